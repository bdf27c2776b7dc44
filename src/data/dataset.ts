/** The dataset contract shared by the loaders and the DataLoader: an indexable, possibly asynchronous collection. */
export interface Dataset<T> {
  readonly length: number;
  get(index: number): T | Promise<T>;
}
