/** Every user-facing failure is a VoxgradError whose message names the op, what was expected and what was given. */
export class VoxgradError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VoxgradError';
  }
}

export function fail(op: string, message: string): never {
  throw new VoxgradError(`${op}: ${message}`);
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
