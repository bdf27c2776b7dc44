// vg.inference: running trained networks on whole volumes (sliding windows, padding to a network's multiple).
export { padToMultiple, type PadToMultipleOptions, type PaddedToMultiple, type SpatialPadMode, type SpatialPadding } from './pad.js';
export { slidingWindowInference, windowStarts, type SlidingWindowOptions, type WindowPredictor } from './sliding-window.js';
