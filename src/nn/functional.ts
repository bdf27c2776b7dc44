/** vg.nn.functional: functional forms that live with the modules (the other functional ops are on vg itself). */
export { scaledDotProductAttention, type ScaledDotProductAttentionOptions } from '../kernels/attention.js';
