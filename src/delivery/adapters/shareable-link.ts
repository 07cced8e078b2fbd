/**
 * Whether a chat platform will take `url` as a link. Discord refuses a whole message whose
 * embed links to a host without a dot — localhost, or a Docker or Kubernetes service name
 * such as `http://steward:8080` — and Telegram one whose button does, loopback addresses
 * included. A development dashboard's link is left out rather than losing the message.
 */
export function isShareableLink(url: string): boolean {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return false;
  }
  return hostname.includes(".") && !hostname.endsWith(".localhost") && !hostname.startsWith("127.");
}
