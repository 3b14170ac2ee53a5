"""The NumPy tier: convstack's kernels as readable NumPy array code, the reference every other tier is tested against.

One algorithm family per module (sliding windows, im2col + GEMM in chunks, flat padded planes,
pointwise, Winograd, FFT, pooling); ``algorithms`` wraps the convolution algorithms as the
registered objects the tier's choice policy picks from.
"""
