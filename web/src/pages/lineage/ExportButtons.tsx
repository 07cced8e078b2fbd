import { useState } from "react";
import { type Api, errorMessage, type Query } from "../../api/client";
import { useApi } from "../../auth/session";
import { EXPORT_FORMATS, type ExportFormat } from "./lineage-types";

/** The file name Steward suggests in Content-Disposition, else lineage.<format>. */
function fileNameOf(response: Response, format: ExportFormat): string {
  const disposition = response.headers.get("content-disposition") ?? "";
  return /filename="([^"]+)"/.exec(disposition)?.[1] ?? `lineage.${format}`;
}

/**
 * Fetches the export with the credential in its header (a plain link would need it in
 * the URL) and hands the body to the browser as a download.
 */
async function download(api: Api, format: ExportFormat, filters: Query): Promise<void> {
  const response = await api.raw("/lineage/export", { ...filters, format });
  const url = URL.createObjectURL(await response.blob());
  try {
    const link = document.createElement("a");
    link.href = url;
    link.download = fileNameOf(response, format);
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // The click has started the download; the browser keeps its own copy.
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}

/** One button per export format, exporting what the current search matches. */
export function ExportButtons({ filters }: { filters: Query }) {
  const api = useApi();
  const [busy, setBusy] = useState<ExportFormat | null>(null);
  const [error, setError] = useState<string | null>(null);
  const exportAs = async (format: ExportFormat) => {
    setBusy(format);
    setError(null);
    try {
      await download(api, format, filters);
    } catch (failure) {
      setError(errorMessage(failure));
    } finally {
      setBusy(null);
    }
  };
  return (
    <fieldset className="lineage-export">
      <legend>Export matching records</legend>
      {EXPORT_FORMATS.map(({ format, label }) => (
        <button
          key={format}
          type="button"
          className="secondary"
          disabled={busy !== null}
          aria-label={`Export as ${label}`}
          onClick={() => exportAs(format)}
        >
          {busy === format ? `Exporting ${label}…` : label}
        </button>
      ))}
      {error && (
        <p className="field-error" role="alert">
          Export failed: {error}
        </p>
      )}
    </fieldset>
  );
}
