// Media-type rules both HTTP services apply to request bodies.

/** application/json and the +json media types, with optional parameters (charset). */
export function isJsonContentType(type: string): boolean {
  return /^\s*application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i.test(type);
}
