/** Records whose keys come from files: any string is a key ('__proto__' included), never a prototype. */

/** `record[key] = value` as an own, enumerable property, even for keys such as '__proto__' that assignment treats specially. */
export function ownProperty<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
