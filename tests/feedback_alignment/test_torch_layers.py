"""LDFALinear / LDFAConv2d (the ``[torch]`` extra) against torch autograd.

Run by ``make test-torch`` (its own virtualenv with the extra); in the core install
these tests skip. Precision: float64, agreement to 1e-10 (round-off of the
different contraction order).
"""

import pytest

torch = pytest.importorskip("torch", reason="torch extra not installed")

from meanfield import torch_layers as tl  # noqa: E402


def _pair_linear(rule, r, n_in=7, n_out=5):
    torch.manual_seed(0)
    ref = torch.nn.Linear(n_in, n_out).double()
    ld = tl.LDFALinear(n_in, n_out, r=r, rule=rule).double()
    with torch.no_grad():
        ld.weight.copy_(ref.weight)
        ld.bias.copy_(ref.bias)
    ld.reset_feedback_svd()
    return ref, ld


@pytest.mark.parametrize("rule", ["normative", "local", "fixed"])
def test_full_rank_linear_equals_backprop(rule):
    ref, ld = _pair_linear(rule, r=10)
    x = torch.randn(4, 3, 7, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    (ref(x) ** 2).sum().backward()
    (ld(x2) ** 2).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ld.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ld.bias.grad, ref.bias.grad, rtol=1e-10, atol=1e-10)
    if rule == "normative":  # P_t Q_t = W: the feedback is at its fixed point
        assert ld.P_t.grad.abs().max() < 1e-10 and ld.Q_t.grad.abs().max() < 1e-10


def test_low_rank_linear_delivers_through_pq_and_local_grads():
    ref, ld = _pair_linear("local", r=2)
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(6, 5, dtype=torch.float64)
    ld(x).backward(g)
    torch.testing.assert_close(x.grad, (g @ ld.P_t) @ ld.Q_t)
    gW = g.T @ x.detach()
    torch.testing.assert_close(ld.P_t.grad, gW @ ld.Q_t.detach().T)
    torch.testing.assert_close(ld.Q_t.grad, ld.P_t.detach().T @ gW)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0)])
def test_full_rank_conv_equals_backprop(stride, padding):
    torch.manual_seed(1)
    ref = torch.nn.Conv2d(3, 4, 3, stride=stride, padding=padding).double()
    ld = tl.LDFAConv2d(3, 4, 3, stride=stride, padding=padding, r=64).double()
    with torch.no_grad():
        ld.weight.copy_(ref.weight)
        ld.bias.copy_(ref.bias)
    ld.reset_feedback_svd()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    (ref(x) ** 2).sum().backward()
    (ld(x2) ** 2).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ld.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-10)


def test_bad_rule_is_a_param_error():
    from meanfield import ParamError

    with pytest.raises(ParamError, match="^rule must be"):
        tl.LDFALinear(3, 2, rule="nope")
