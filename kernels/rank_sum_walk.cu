// Rank sums by group from pre-sorted genes: the tie-averaging walk of the Wilcoxon test.
//
// One thread per gene. Row `gene` of `values` holds that gene's values in ascending order
// (CuPy's sort; NaN last and left out), row `gene` of `codes` the group code of each value.
// A run of t equal values spans ranks start+1 … start+t, so each gets the average rank
// start + (t + 1) / 2; the walk adds it to the value's group and adds t^3 - t to the tie term.
//
// CPU twin: cohortex.stats._ranksum.walk_sorted_runs (numba `_walk_global`), held equal by
// tests/test_de.py::test_rank_sum_walk_kernel_equals_twin on a GPU.
//
// Outputs (zeroed by the caller, float64):
//   rank_level[code * n_genes + gene]  sum of average ranks of the group's values
//   linear_sum[code * n_genes + gene]  sum of expm1(value) when `linear` (log1p data)
//   tie_term[gene]                     sum over tie runs of t^3 - t

extern "C" __global__ void rank_sum_walk(const double* __restrict__ values,
                                         const int* __restrict__ codes,
                                         long long n_genes,
                                         long long n_values,
                                         int linear,
                                         double* __restrict__ rank_level,
                                         double* __restrict__ linear_sum,
                                         double* __restrict__ tie_term) {
    long long gene = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gene >= n_genes) {
        return;
    }
    const double* row = values + gene * n_values;
    const int* row_codes = codes + gene * n_values;
    long long n = n_values;
    while (n > 0 && isnan(row[n - 1])) {
        --n;
    }
    double tie = 0.0;
    long long start = 0;
    while (start < n) {
        const double value = row[start];
        long long stop = start + 1;
        while (stop < n && row[stop] == value) {
            ++stop;
        }
        const long long t = stop - start;
        const double average = (double)start + 0.5 * (double)(t + 1);
        const double lifted = linear ? expm1(value) : 0.0;
        if (t > 1) {
            const double tf = (double)t;
            tie += tf * tf * tf - tf;
        }
        for (long long i = start; i < stop; ++i) {
            const long long slot = (long long)row_codes[i] * n_genes + gene;
            rank_level[slot] += average;
            if (linear) {
                linear_sum[slot] += lifted;
            }
        }
        start = stop;
    }
    tie_term[gene] = tie;
}
