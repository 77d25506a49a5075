"""LDFALinear / LDFAConv2d (the ``[torch]`` extra) against torch autograd.

Run by ``make test-torch`` (its own virtualenv with the extra: ``torch==2.13.0`` first,
then ``-e ".[torch,dev]"``); in the core install these tests skip (torch is not a
core dependency).

Tolerances are stated in units of the dtype's machine epsilon ``eps`` times the scale
of the product that is compared: for ``grad_input = g W`` the element-wise scale is
``(|g| |W|)_ij`` (the standard bound of a dot product's round-off), so a relative error
``|d| / (|g| |W|) <= TOL_EPS * eps`` with ``TOL_EPS = 64``. Measured on 64 x 48 layers
(five seeds, float64 and float32): at most 8.4 eps (the SVD reconstruction ``P_t Q_t - W``
itself is about 20 eps of ``max |W|``). The weight gradient is the ordinary one
(``g^T x``) in both layers, so it is compared at ``4 eps``. Any rank deficiency (for
instance ``r = min(in, out) - 1``) gives errors of order one (checked below), far
outside these bands.

Paper: Hanut & Kadmon, arXiv:2502.20580; digest ``shared/papers/feedback_alignment.md``
§1.1 (code convention ``B^T = P_t Q_t``) and §1.2 (normative and local rules).
"""

import pytest

torch = pytest.importorskip("torch", reason="torch extra not installed (make test-torch)")

from meanfield import torch_layers as tl  # noqa: E402

TOL_EPS = 64.0
DTYPES = [torch.float64, torch.float32]


def _eps(dtype) -> float:
    return torch.finfo(dtype).eps


def _assert_rel(got, want, scale, n_eps, dtype):
    """``max |got - want| / scale <= n_eps * eps`` element-wise (scale > 0)."""
    err = float(((got - want).abs() / scale.clamp_min(torch.finfo(dtype).tiny)).max())
    assert err <= n_eps * _eps(dtype), f"{err / _eps(dtype):.1f} eps > {n_eps} eps"


def _pair_linear(rule, r, n_in=64, n_out=48, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    ref = torch.nn.Linear(n_in, n_out).to(dtype)
    ld = tl.LDFALinear(n_in, n_out, r=r, rule=rule).to(dtype)
    with torch.no_grad():
        ld.weight.copy_(ref.weight)
        ld.bias.copy_(ref.bias)
    ld.reset_feedback_svd()
    return ref, ld


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", ["normative", "local", "fixed"])
def test_full_rank_linear_equals_backprop(rule, dtype):
    ref, ld = _pair_linear(rule, r=100, dtype=dtype)  # rank clipped to min(64, 48)
    assert ld.rank == 48
    x = torch.randn(4, 3, 64, dtype=dtype, requires_grad=True)  # extra batch dim
    x2 = x.detach().clone().requires_grad_(True)
    g = torch.randn(4, 3, 48, dtype=dtype)
    ref(x).backward(g)
    ld(x2).backward(g)
    W = ref.weight.detach()
    _assert_rel(x2.grad, x.grad, g.abs() @ W.abs(), TOL_EPS, dtype)
    g2, x2d = g.reshape(-1, 48), x.detach().reshape(-1, 64)
    _assert_rel(ld.weight.grad, ref.weight.grad, g2.abs().T @ x2d.abs(), 4, dtype)
    _assert_rel(ld.bias.grad, ref.bias.grad, g2.abs().sum(0), 4, dtype)
    if rule == "normative":  # P_t Q_t = W: the feedback sits at its fixed point
        scale = float(W.abs().max()) * float(ld.Q_t.detach().abs().max()) * 64
        assert float(ld.P_t.grad.abs().max()) <= TOL_EPS * _eps(dtype) * scale
    if rule == "fixed":
        assert ld.P_t.grad is None and ld.Q_t.grad is None
        assert not ld.P_t.requires_grad and not ld.Q_t.requires_grad


def test_rank_deficient_feedback_is_caught_by_the_tolerance():
    """Power of the band above: one missing singular direction is an O(1) error."""
    ref, ld = _pair_linear("fixed", r=47)
    x = torch.randn(16, 64, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    g = torch.randn(16, 48, dtype=torch.float64)
    ref(x).backward(g)
    ld(x2).backward(g)
    rel = (x2.grad - x.grad).abs() / (g.abs() @ ref.weight.detach().abs())
    assert float(rel.max()) > 1e6 * TOL_EPS * _eps(torch.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_rank_mlp_chain_equals_backprop(dtype):
    """Three LDFA layers with tanh between them: every gradient equals autograd's."""
    torch.manual_seed(3)
    sizes = [20, 32, 24, 10]
    ref = torch.nn.Sequential(
        torch.nn.Linear(20, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 24),
        torch.nn.Tanh(),
        torch.nn.Linear(24, 10),
    ).to(dtype)
    ld = torch.nn.Sequential(
        tl.LDFALinear(20, 32, r=32),
        torch.nn.Tanh(),
        tl.LDFALinear(32, 24, r=32),
        torch.nn.Tanh(),
        tl.LDFALinear(24, 10, r=32, rule="local"),
    ).to(dtype)
    for a, b in zip(ref[::2], ld[::2], strict=True):
        with torch.no_grad():
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
        b.reset_feedback_svd()
    x = torch.randn(8, 20, dtype=dtype)
    y = torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(ref(x), y).backward()
    torch.nn.functional.cross_entropy(ld(x), y).backward()
    # errors compound through two feedback layers; the scale is that of the largest grad
    for a, b, n in zip(ref[::2], ld[::2], sizes, strict=False):
        scale = a.weight.grad.abs().max().expand_as(a.weight.grad) * n
        _assert_rel(b.weight.grad, a.weight.grad, scale, TOL_EPS, dtype)


def test_low_rank_linear_delivers_through_pq_and_local_grads():
    """Local rule: P_t, Q_t get the gradient a factorised copy ``W = P_t Q_t`` would get."""
    ref, ld = _pair_linear("local", r=3)
    x = torch.randn(6, 64, dtype=torch.float64, requires_grad=True)
    g = torch.randn(6, 48, dtype=torch.float64)
    ld(x).backward(g)
    # independent reference: autograd through a layer whose weight IS P_t Q_t
    Pt = ld.P_t.detach().clone().requires_grad_(True)
    Qt = ld.Q_t.detach().clone().requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    torch.nn.functional.linear(xr, Pt @ Qt).backward(g)
    eps = _eps(torch.float64)
    torch.testing.assert_close(x.grad, xr.grad, rtol=64 * eps, atol=64 * eps)
    torch.testing.assert_close(ld.P_t.grad, Pt.grad, rtol=64 * eps, atol=64 * eps)
    torch.testing.assert_close(ld.Q_t.grad, Qt.grad, rtol=64 * eps, atol=64 * eps)


def test_low_rank_normative_grads_are_the_feedback_loss_gradient():
    """Normative rule: ``P_t.grad, Q_t.grad`` = gradient of ``1/2 |W - P_t Q_t|_F^2``."""
    torch.manual_seed(5)
    ld = tl.LDFALinear(30, 20, r=4, rule="normative", init="random").double()
    x = torch.randn(5, 30, dtype=torch.float64)
    ld(x).sum().backward()
    Pt = ld.P_t.detach().clone().requires_grad_(True)
    Qt = ld.Q_t.detach().clone().requires_grad_(True)
    (0.5 * ((ld.weight.detach() - Pt @ Qt) ** 2).sum()).backward()
    eps = _eps(torch.float64)
    torch.testing.assert_close(ld.P_t.grad, Pt.grad, rtol=64 * eps, atol=64 * eps)
    torch.testing.assert_close(ld.Q_t.grad, Qt.grad, rtol=64 * eps, atol=64 * eps)


def test_normative_sgd_reaches_the_eckart_young_floor():
    """Descending the normative gradients (optimiser over P_t, Q_t only, W fixed) from a
    random start reaches the best rank-r approximation: ``|W - P_t Q_t|_F^2`` equals
    ``sum_{i>r} s_i^2`` to 1e-8 relative, and the subspace is the top-r one."""
    torch.manual_seed(7)
    r = 3
    ld = tl.LDFALinear(12, 8, r=r, rule="normative", init="random").double()
    with torch.no_grad():  # a well-separated spectrum: fast, unambiguous convergence
        U, _, Vh = torch.linalg.svd(torch.randn(8, 12, dtype=torch.float64), full_matrices=False)
        s = torch.tensor([3.0, 2.5, 2.0, 0.6, 0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
        ld.weight.copy_(U * s @ Vh)
    opt = torch.optim.SGD([ld.P_t, ld.Q_t], lr=0.05)
    x = torch.randn(4, 12, dtype=torch.float64)
    for _ in range(3000):
        opt.zero_grad()
        ld(x).sum().backward()
        opt.step()
    W = ld.weight.detach()
    res = float(((W - ld.P_t.detach() @ ld.Q_t.detach()) ** 2).sum())
    floor = float((s[r:] ** 2).sum())
    assert abs(res - floor) <= 1e-8 * floor
    Pt = ld.P_t.detach()
    proj = U[:, :r].T @ Pt  # P_t's columns span the top-r left subspace
    assert float(torch.linalg.svdvals(proj).min() / torch.linalg.svdvals(Pt).max()) > 0.1
    leak = U[:, r:].T @ Pt
    assert float(leak.abs().max()) <= 1e-6


def _pair_conv(stride, padding, r, rule="normative", dilation=1):
    torch.manual_seed(1)
    kw = {"stride": stride, "padding": padding, "dilation": dilation}
    ref = torch.nn.Conv2d(3, 6, 3, **kw).double()
    ld = tl.LDFAConv2d(3, 6, 3, r=r, rule=rule, **kw).double()
    with torch.no_grad():
        ld.weight.copy_(ref.weight)
        ld.bias.copy_(ref.bias)
    ld.reset_feedback_svd()
    return ref, ld


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (2, 2, 2)])
def test_full_rank_conv_equals_backprop(stride, padding, dilation):
    ref, ld = _pair_conv(stride, padding, r=64, dilation=dilation)
    assert ld.rank == 6  # min(r, out_channels, in * k * k)
    x = torch.randn(2, 3, 11, 11, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    g = torch.randn_like(ref(x))
    ref(x).backward(g)
    ld(x2).backward(g)
    # scale: the same transposed convolution of |g| with |W|
    scale = torch.nn.grad.conv2d_input(
        x.shape, ref.weight.detach().abs(), g.abs(), stride, padding, dilation
    )
    dt = torch.float64
    _assert_rel(x2.grad, x.grad, scale, TOL_EPS, dt)
    wscale = torch.nn.grad.conv2d_weight(
        x.detach().abs(), ref.weight.shape, g.abs(), stride, padding, dilation
    )
    _assert_rel(ld.weight.grad, ref.weight.grad, wscale, 4, dt)
    _assert_rel(ld.bias.grad, ref.bias.grad, g.abs().sum((0, 2, 3)), 4, dt)


@pytest.mark.parametrize("rule", ["normative", "local"])
def test_low_rank_conv_rules_against_autograd(rule):
    """Rank 2 of 6 channels: the delivered error is the input gradient of a conv whose
    kernel is ``P_t Q_t``; ``local`` gives P_t, Q_t that conv's kernel gradient chained
    through the factorisation; ``normative`` the gradient of ``1/2 |W - P_t Q_t|^2``."""
    _, ld = _pair_conv(2, 1, r=2, rule=rule)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64, requires_grad=True)
    out = ld(x)
    g = torch.randn_like(out)
    out.backward(g)
    Pt = ld.P_t.detach().clone().requires_grad_(True)
    Qt = ld.Q_t.detach().clone().requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    B = (Pt @ Qt.reshape(2, -1)).reshape(ld.weight.shape)
    eps = _eps(torch.float64)
    tol = {"rtol": 64 * eps, "atol": 64 * eps}
    if rule == "local":
        torch.nn.functional.conv2d(xr, B, None, 2, 1).backward(g)
    else:
        torch.nn.functional.conv2d(xr, B, None, 2, 1).backward(g, inputs=[xr])
        (0.5 * ((ld.weight.detach() - B) ** 2).sum()).backward(inputs=[Pt, Qt])
    torch.testing.assert_close(x.grad, xr.grad, **tol)
    torch.testing.assert_close(ld.P_t.grad, Pt.grad, **tol)
    torch.testing.assert_close(ld.Q_t.grad, Qt.grad, **tol)


def test_parameters_train_with_a_standard_optimiser():
    """``model.parameters()`` holds P_t, Q_t for adaptive rules and not for ``fixed``."""
    for rule, n in (("normative", 4), ("local", 4), ("fixed", 2)):
        layer = tl.LDFALinear(5, 4, r=2, rule=rule)
        assert sum(p.requires_grad for p in layer.parameters()) == n
        assert "r=2" in repr(layer) and f"rule={rule}" in repr(layer)


def test_random_init_matches_dtype_and_shapes():
    layer = tl.LDFALinear(9, 7, r=3, init="random", dtype=torch.float64)
    assert layer.P_t.shape == (7, 3) and layer.Q_t.shape == (3, 9)
    assert layer.P_t.dtype == torch.float64 and layer.Q_t.dtype == torch.float64
    conv = tl.LDFAConv2d(4, 8, 3, r=5, init="random")
    assert conv.P_t.shape == (8, 5) and conv.Q_t.shape == (5, 4, 3, 3)


def test_bad_arguments_are_param_errors():
    from meanfield import ParamError

    with pytest.raises(ParamError, match="^rule must be"):
        tl.LDFALinear(3, 2, rule="nope")
    with pytest.raises(ParamError, match="^init must be"):
        tl.LDFALinear(3, 2, init="zeros")
    with pytest.raises(ParamError, match="^padding must be"):
        tl.LDFAConv2d(3, 2, 3, padding="same")


# -- convert(): drop-in replacement inside existing models ---------------------------------------
def _grads_equal(ref, ld, n_eps=128.0):
    """Every shared parameter's gradient within ``n_eps`` eps of that tensor's max |grad|
    (measured at most 14 eps through four LDFA layers, float64)."""
    ref_p = dict(ref.named_parameters())
    eps = _eps(torch.float64)
    names = [n for n, _ in ld.named_parameters() if n in ref_p]
    assert len(names) == len(ref_p)  # every original parameter is still there, same name
    for n, p in ld.named_parameters():
        if n in ref_p:
            scale = float(ref_p[n].grad.abs().max())
            err = float((p.grad - ref_p[n].grad).abs().max())
            assert err <= n_eps * eps * scale, (n, err / (eps * scale))


def _cnn():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(72, 20), nn.Tanh(), nn.Linear(20, 10),
    )  # fmt: skip


def test_convert_cnn_full_rank_equals_backprop():
    import copy

    torch.manual_seed(0)
    ref = _cnn().double()
    ld = tl.convert(copy.deepcopy(ref), r=1000)
    kinds = [type(m).__name__ for m in ld]
    assert kinds.count("LDFAConv2d") == 2 and kinds.count("LDFALinear") == 2
    assert [m.rank for m in ld if hasattr(m, "rank")] == [6, 8, 20, 10]
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (5,))
    for m in (ref, ld):
        torch.nn.functional.cross_entropy(m(x), y).backward()
    _grads_equal(ref, ld)


def test_convert_transformer_block_replaces_only_plain_linears():
    """The feed-forward ``linear1``/``linear2`` become LDFA layers; attention (its fused
    ``in_proj`` and its ``out_proj`` subclass, read directly by the attention kernel)
    and the layer norms keep their exact backward pass."""
    import copy

    torch.manual_seed(1)
    ref = torch.nn.TransformerEncoderLayer(
        16, 2, dim_feedforward=24, dropout=0.0, batch_first=True
    ).double()
    ld = tl.convert(copy.deepcopy(ref), r=1000)
    assert isinstance(ld.linear1, tl.LDFALinear) and isinstance(ld.linear2, tl.LDFALinear)
    assert not isinstance(ld.self_attn.out_proj, tl.LDFALinear)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    for m in (ref, ld):
        (m(x) ** 2).sum().backward()
    _grads_equal(ref, ld)


def test_convert_low_rank_changes_the_delivered_error_only_below_the_top():
    """Rank 1: the last layer's own gradients are unchanged (they never pass through a
    feedback matrix), earlier ones differ by far more than round-off."""
    import copy

    torch.manual_seed(2)
    ref = _cnn().double()
    ld = tl.convert(copy.deepcopy(ref), r=1, rule="fixed")
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (5,))
    for m in (ref, ld):
        torch.nn.functional.cross_entropy(m(x), y).backward()
    eps = _eps(torch.float64)
    torch.testing.assert_close(ld[7].weight.grad, ref[7].weight.grad, rtol=4 * eps, atol=4 * eps)
    rel = (ld[0].weight.grad - ref[0].weight.grad).abs().max() / ref[0].weight.grad.abs().max()
    assert float(rel) > 1e-3
    assert not ld[0].P_t.requires_grad  # fixed feedback stays out of the optimiser


def _digits_cnn_accuracy(r: int, epochs: int = 10, seed: int = 0) -> float:
    from meanfield.sims.engines.learning.mlp import digits

    D = digits()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: more threads only contend (80x on 2 cores)
    try:
        torch.manual_seed(seed)
        model = tl.convert(_cnn(), r=r)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        Xtr = torch.tensor(D["Xtr"], dtype=torch.float32).reshape(-1, 1, 8, 8)
        ytr = torch.tensor(D["ytr"])
        for _ in range(epochs):
            perm = torch.randperm(len(ytr))
            for s0 in range(0, len(ytr), 32):
                idx = perm[s0 : s0 + 32]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx]).backward()
                opt.step()
        with torch.no_grad():
            Xte = torch.tensor(D["Xte"], dtype=torch.float32).reshape(-1, 1, 8, 8)
            return float((model(Xte).argmax(1).numpy() == D["yte"]).mean())
    finally:
        torch.set_num_threads(n_threads)


def test_converted_cnn_learns_digits_with_rank_2_feedback():
    """scikit-learn's digits (8x8) on the CNN above, every layer converted, normative
    feedback, Adam 3e-3, 10 epochs (about 1 s each). Measured test accuracy (seeds 0, 1):
    full rank 0.957, 0.954 (backprop); rank 2 0.913, 0.878; rank 1 0.55, 0.68; chance 0.1.
    Bands: full rank > 0.93, rank 2 > 0.8."""
    assert _digits_cnn_accuracy(1000) > 0.93
    assert _digits_cnn_accuracy(2) > 0.8


def test_convert_arguments():
    from meanfield import ParamError

    lin = tl.convert(torch.nn.Linear(4, 3), r=2, init="random")
    assert isinstance(lin, tl.LDFALinear) and lin.rank == 2
    grouped = torch.nn.Conv2d(4, 4, 3, groups=2)
    assert tl.convert(torch.nn.Sequential(grouped))[0] is grouped  # kept exact
    with pytest.raises(ParamError, match="^rule must be"):
        tl.convert(torch.nn.Linear(4, 3), rule="bp")
    with pytest.raises(ParamError, match="^init must be"):
        tl.convert(torch.nn.Linear(4, 3), init="zeros")


@pytest.mark.parametrize("layer_kind", ["linear", "conv"])
def test_only_the_needed_gradients_are_returned(layer_kind):
    """An input without grad (a first layer) gets no delivered error; a frozen weight no
    gradient; P_t, Q_t of the local rule still get theirs (they need ``dL/dW``)."""
    torch.manual_seed(6)
    if layer_kind == "linear":
        layer, x = tl.LDFALinear(6, 4, r=2, rule="local").double(), torch.randn(3, 6)
    else:
        layer, x = tl.LDFAConv2d(2, 3, 3, r=2, rule="local").double(), torch.randn(1, 2, 5, 5)
    layer.weight.requires_grad_(False)
    x = x.double()  # requires_grad False
    layer(x).sum().backward()
    assert layer.weight.grad is None and layer.bias.grad is not None
    assert layer.P_t.grad is not None and layer.Q_t.grad is not None
    assert float(layer.P_t.grad.abs().max()) > 0 and x.grad is None
