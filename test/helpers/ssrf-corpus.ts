/** Issue 11's corpus: every URL here must be refused at registration and at connect. */
export const SSRF_CORPUS: readonly string[] = [
  "http://169.254.169.254/latest/meta-data/",
  "http://localhost/",
  "http://0/",
  "http://0.0.0.0/",
  "http://127.1/",
  "http://2130706433/",
  "http://017700000001/",
  "http://[::1]/",
  "http://[::ffff:127.0.0.1]/",
  "http://[::ffff:7f00:1]/",
  "http://[::ffff:a9fe:a9fe]/",
  "http://[fc00::1]/",
  "http://[64:ff9b::7f00:1]/",
  "http://100.64.0.1/",
  "http://224.0.0.1/",
  "file:///etc/passwd",
  "gopher://127.0.0.1:70/_",
  "http://a@127.0.0.1/",
];

/** The corpus entries an HTTP client would try to connect to, with their port replaced. */
export function connectableCorpus(port: number): string[] {
  return SSRF_CORPUS.filter((url) => url.startsWith("http://")).map((url) => {
    const parsed = new URL(url);
    parsed.port = String(port);
    return parsed.href;
  });
}
