// vg.data: filled in by the training-stack issue.
export {};
