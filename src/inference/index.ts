// vg.inference: running trained networks on whole volumes (sliding windows, padding to a network's multiple).
export {};
