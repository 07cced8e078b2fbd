/**
 * Whether the external user behind a call is on a rule's `trusted_users` list, whose
 * calls never need approval. An entry matches the user id exactly or the e-mail
 * address without regard to case, as `external_users` policy conditions do.
 */
export function isTrustedUser(
  trustedUsers: readonly string[] | undefined,
  user: { userId?: string; userEmail?: string },
): boolean {
  if (!trustedUsers?.length) return false;
  const email = user.userEmail?.toLowerCase();
  return trustedUsers.some(
    (entry) => entry === user.userId || (email !== undefined && entry.toLowerCase() === email),
  );
}
