"""The updated Cholesky factor of an active set against numpy's factor and solve of the same
set, through a random walk of variables entering and leaving."""

import numpy as np

from cohortex.stats._cpu.cholesky import CholeskyFactor


def _spd(m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(3 * m, m)) + rng.normal(size=(3 * m, 1))  # correlated columns
    return values.T @ values / (3 * m)


def test_walk_of_appends_and_removals_matches_dense_factor() -> None:
    m = 60
    a = _spd(m, 0)
    rng = np.random.default_rng(1)
    factor = CholeskyFactor(m)
    for _ in range(400):
        outside = [j for j in range(m) if j not in factor.members]
        if factor.size < 3 or (outside and rng.random() < 0.55):
            member = int(rng.choice(outside))
            column = a[factor.members, member]
            assert factor.append(member, column, float(a[member, member]))
        else:
            factor.remove(int(rng.choice(factor.members)))
        members = factor.members
        block = a[np.ix_(members, members)]
        k = len(members)
        # the factor itself: numpy's lower factor transposed
        np.testing.assert_allclose(
            np.triu(factor.upper[:k, :k]), np.linalg.cholesky(block).T, rtol=1e-9, atol=1e-11
        )
        right = rng.normal(size=k)
        np.testing.assert_allclose(
            factor.solve(right), np.linalg.solve(block, right), rtol=1e-8, atol=1e-10
        )
        assert np.isclose(factor.quadratic(right), right @ block @ right, rtol=1e-12)


def test_dependent_variable_is_refused_and_factor_unchanged() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=(40, 3))
    values = np.column_stack([values, values[:, 0] - 2 * values[:, 2]])  # the 4th depends
    a = values.T @ values
    factor = CholeskyFactor(4)
    for j in range(3):
        assert factor.append(j, a[factor.members, j], float(a[j, j]))
    before = factor.upper[:3, :3].copy()
    assert not factor.append(3, a[[0, 1, 2], 3], float(a[3, 3]))
    assert factor.members == [0, 1, 2]
    np.testing.assert_array_equal(factor.upper[:3, :3], before)
    right = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(factor.solve(right), np.linalg.solve(a[:3, :3], right), rtol=1e-10)
