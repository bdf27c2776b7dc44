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

let userOp: string | null = null;

/**
 * The op the user called (the outermost registered op running, or `<op>.backward` during its backward rule): limit
 * errors raised deep inside an op (an internal fill, a buffer too large to bind) name it rather than the internal
 * kernel. Returns false when an outer op already holds the name.
 */
export function enterUserOp(name: string): boolean {
  if (userOp !== null) return false;
  userOp = name;
  return true;
}

export function leaveUserOp(): void {
  userOp = null;
}

export function currentUserOp(): string | null {
  return userOp;
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
