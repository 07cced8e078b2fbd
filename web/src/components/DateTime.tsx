/** A timestamp from the API in the reader's locale, machine-readable in `dateTime`. */
export function DateTime({ value }: { value: string }) {
  return <time dateTime={value}>{new Date(value).toLocaleString()}</time>;
}
