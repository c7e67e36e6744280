// Compile a CUDA kernel file for the host, unmodified:
//   g++ -std=c++17 -shared -fPIC -x c++ -include cuda_host_shim.h kernels/NAME.cu
// Each `extern "C" __global__` function becomes a plain C function. The launcher
// (tests/host_kernels.py) sets blockIdx/threadIdx/blockDim/gridDim and calls it once per thread
// of the grid, one thread after another. That is exact for kernels whose threads do not share
// memory or wait for each other; a kernel that synchronises (__syncthreads, shared memory,
// atomics) does not build here and needs an emulation of its own.
#pragma once

#include <cmath>
#include <cstdint>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

struct cohortex_host_dim3 {
    unsigned int x, y, z;
};

extern "C" {
cohortex_host_dim3 threadIdx, blockIdx, blockDim, gridDim;
}

using std::expm1;
using std::isinf;
using std::isnan;
using std::log1p;

// Deliberately undefined: a synchronising kernel fails to load instead of running wrongly.
void cohortex_host_shim_cannot_run(const char* what);
#define __syncthreads() cohortex_host_shim_cannot_run("__syncthreads")
#define __shared__ static_assert(false, "the host shim cannot run __shared__ memory");
#define atomicAdd(...) cohortex_host_shim_cannot_run("atomicAdd")
