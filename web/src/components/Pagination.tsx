import type { Page } from "../api/client";

/** Previous/next through a list endpoint's pages. */
export function Pagination({
  page,
  onPage,
  label,
}: {
  page: Pick<Page<unknown>, "page" | "limit" | "total" | "has_more">;
  onPage: (page: number) => void;
  label: string;
}) {
  const pages = Math.max(1, Math.ceil(page.total / page.limit));
  return (
    <nav className="pagination" aria-label={`${label} pages`}>
      <button type="button" onClick={() => onPage(page.page - 1)} disabled={page.page <= 1}>
        Previous
      </button>
      <span>
        Page {page.page} of {pages} · {page.total} in all
      </span>
      <button type="button" onClick={() => onPage(page.page + 1)} disabled={!page.has_more}>
        Next
      </button>
    </nav>
  );
}
