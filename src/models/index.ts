// vg.models: filled in by the training-stack issue.
export {};
