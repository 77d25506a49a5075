"""Drop-in PyTorch layers with low-dimensional error feedback (the optional ``[torch]`` extra).

Hanut & Kadmon, arXiv:2502.20580 (digest ``shared/papers/feedback_alignment.md`` §1.1-1.2,
code convention of §1.1): the forward pass is the ordinary one; the backward pass sends
the error to the layer's input through ``B^T = P_t Q_t`` (``P_t`` ``out x r``, ``Q_t``
``r x in``; the paper's ``B = Q P``) instead of ``W``, so ``grad_input = (grad_out P_t) Q_t``.
The weight gradient is the ordinary local one, ``grad_out^T x``.

``P_t`` and ``Q_t`` are :class:`torch.nn.Parameter` s whose ``.grad`` the backward pass fills
with the rule's descent direction (so any optimiser over ``model.parameters()`` trains them,
as in the authors' code):

* ``rule='normative'``: the gradient of ``1/2 |W - P_t Q_t|_F^2``;
* ``rule='local'``: the gradient a factorised copy ``W = P_t Q_t`` would receive,
  ``grad_P_t = grad_W Q_t^T``, ``grad_Q_t = P_t^T grad_W`` (Kolen--Pollack type; add
  weight decay in the optimiser);
* ``rule='fixed'``: no gradient (fixed random feedback).

``init='svd'`` starts ``P_t Q_t`` at the truncated SVD of ``W``; at full rank
(``r >= min(in, out)``) the layer then equals backprop (tested against autograd).
The rank is ``min(r, in_features, out_features)`` (digest pitfall 7).

:func:`convert` swaps every ``nn.Linear`` and ``nn.Conv2d`` of an existing model (a CNN,
the feed-forward blocks of a transformer) for these layers, keeping the weights, as the
authors' ``replace_linear`` does (digest §1.1).

Importing this module needs torch: ``pip install "meanfield[torch]"``.
"""

from __future__ import annotations

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover (the core install has no torch)
    raise ImportError(
        'meanfield.torch_layers needs the torch extra: pip install "meanfield[torch]"'
    ) from exc

__all__ = ["LDFALinear", "LDFAConv2d", "RULES", "convert"]

RULES = ("normative", "local", "fixed")


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        from ._params import ParamError

        raise ParamError("rule", "one of " + ", ".join(RULES), rule)
    return rule


def _fb_grads(rule: str, W2d, grad_W2d, Pt, Qt):
    """Descent gradients of ``P_t`` (out x r) and ``Q_t`` (r x in) for a flattened ``W``."""
    if rule == "normative":
        E = W2d - Pt @ Qt
        return -(E @ Qt.T), -(Pt.T @ E)
    if rule == "local":
        return grad_W2d @ Qt.T, Pt.T @ grad_W2d
    return None, None


class _LinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, Pt, Qt, rule):
        ctx.save_for_backward(x, weight, Pt, Qt)
        ctx.has_bias = bias is not None
        ctx.rule = rule
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, Pt, Qt = ctx.saved_tensors
        need = ctx.needs_input_grad  # (x, weight, bias, P_t, Q_t, rule)
        go = grad_out.reshape(-1, grad_out.shape[-1])
        grad_w = go.T @ x.reshape(-1, x.shape[-1])  # the local rule needs it even if W is frozen
        grad_b = go.sum(0) if ctx.has_bias and need[2] else None
        grad_in = (grad_out @ Pt) @ Qt if need[0] else None  # the first layer skips it
        gP, gQ = _fb_grads(ctx.rule, weight, grad_w, Pt, Qt) if need[3] else (None, None)
        return grad_in, grad_w if need[1] else None, grad_b, gP, gQ, None


class _FeedbackMixin:
    def _init_feedback(self, W2d, rank: int, init: str, generator=None):
        with torch.no_grad():
            if init == "svd":
                U, S, Vh = torch.linalg.svd(W2d, full_matrices=False)
                s = S[:rank].sqrt()
                Pt, Qt = U[:, :rank] * s, s[:, None] * Vh[:rank]
            elif init == "random":
                out_f, in_f = W2d.shape
                Pt = torch.randn(out_f, rank, generator=generator) / rank**0.5
                Qt = torch.randn(rank, in_f, generator=generator) / in_f**0.5
            else:
                from ._params import ParamError

                raise ParamError("init", "one of svd, random", init)
        like = {"dtype": W2d.dtype, "device": W2d.device}  # random draws are made on the CPU
        self.P_t = nn.Parameter(Pt.to(**like).clone(), requires_grad=self.rule != "fixed")
        self.Q_t = nn.Parameter(Qt.to(**like).clone(), requires_grad=self.rule != "fixed")

    def reset_feedback_svd(self) -> None:
        """Set ``P_t Q_t`` to the truncated SVD of the current weight (the authors' reset)."""
        W2d = self.weight.detach().reshape(self.weight.shape[0], -1)
        U, S, Vh = torch.linalg.svd(W2d, full_matrices=False)
        s = S[: self.rank].sqrt()
        with torch.no_grad():
            self.P_t.copy_(U[:, : self.rank] * s)
            self.Q_t.copy_((s[:, None] * Vh[: self.rank]).reshape(self.Q_t.shape))


class LDFALinear(nn.Linear, _FeedbackMixin):
    """``nn.Linear`` whose backward pass delivers the error through rank-``r`` feedback."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        r: int = 16,
        rule: str = "normative",
        init: str = "svd",
        device=None,
        dtype=None,
    ):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.rule = _check_rule(rule)
        self.rank = int(min(r, in_features, out_features))
        self._init_feedback(self.weight.detach(), self.rank, init)

    def forward(self, x):
        return _LinearFn.apply(x, self.weight, self.bias, self.P_t, self.Q_t, self.rule)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", r={self.rank}, rule={self.rule}"


class _Conv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, Pt, Qt, rule, stride, padding, dilation):
        ctx.save_for_backward(x, weight, Pt, Qt)
        ctx.has_bias = bias is not None
        ctx.conf = (rule, stride, padding, dilation)
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, Pt, Qt = ctx.saved_tensors
        rule, stride, padding, dilation = ctx.conf
        need = ctx.needs_input_grad  # (x, weight, bias, P_t, Q_t, ...)
        grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad_out, stride, padding, dilation)
        grad_b = grad_out.sum((0, 2, 3)) if ctx.has_bias and need[2] else None
        grad_in = None
        if need[0]:  # error compressed to r channels by the 1x1 P_t, expanded by the k x k Q_t
            g_r = torch.einsum("nohw,or->nrhw", grad_out, Pt)
            grad_in = torch.nn.grad.conv2d_input(x.shape, Qt, g_r, stride, padding, dilation)
        gP = gQ = None
        if need[3]:
            out_c = weight.shape[0]
            gP, gQ = _fb_grads(
                rule,
                weight.reshape(out_c, -1),
                grad_w.reshape(out_c, -1),
                Pt,
                Qt.reshape(Qt.shape[0], -1),
            )
            if gQ is not None:
                gQ = gQ.reshape(Qt.shape)
        grad_w = grad_w if need[1] else None
        return grad_in, grad_w, grad_b, gP, gQ, None, None, None, None


class LDFAConv2d(nn.Conv2d, _FeedbackMixin):
    """``nn.Conv2d`` (``groups=1``, zero padding) with rank-``r`` feedback over channels.

    ``P_t`` is a 1x1 kernel (``out x r``), ``Q_t`` a ``k x k`` kernel (``r x in x k x k``);
    ``grad_input = conv_input(conv_input(grad_out, P_t), Q_t)`` with the layer's stride,
    padding and dilation applied at ``Q_t`` (digest §1.1, conv version).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias: bool = True,
        *,
        r: int = 16,
        rule: str = "normative",
        init: str = "svd",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups=1,
            bias=bias,
            padding_mode="zeros",
            device=device,
            dtype=dtype,
        )
        if isinstance(self.padding, str):
            from ._params import ParamError

            raise ParamError("padding", "an integer or a pair (not a string)", self.padding)
        self.rule = _check_rule(rule)
        k = self.weight[0].numel()
        self.rank = int(min(r, out_channels, k))
        W2d = self.weight.detach().reshape(out_channels, -1)
        self._init_feedback(W2d, self.rank, init)
        self.Q_t = nn.Parameter(
            self.Q_t.detach().reshape(self.rank, *self.weight.shape[1:]),
            requires_grad=self.rule != "fixed",
        )

    def forward(self, x):
        return _Conv2dFn.apply(
            x,
            self.weight,
            self.bias,
            self.P_t,
            self.Q_t,
            self.rule,
            self.stride,
            self.padding,
            self.dilation,
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + f", r={self.rank}, rule={self.rule}"


def _convertible_conv(m) -> bool:
    return (
        type(m) is nn.Conv2d
        and m.groups == 1
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
    )


def convert(
    module: nn.Module,
    *,
    r: int = 16,
    rule: str = "normative",
    init: str = "svd",
) -> nn.Module:
    """Replace, in place, every ``nn.Linear`` and ``nn.Conv2d`` inside ``module`` by
    :class:`LDFALinear` / :class:`LDFAConv2d` with the same weights, bias, device and dtype.

    Only exact ``nn.Linear`` / ``nn.Conv2d`` instances are replaced: subclasses (such as
    ``nn.MultiheadAttention``'s ``out_proj``, whose weight the attention reads directly),
    grouped convolutions and non-zero padding modes keep their exact backward pass, as do
    normalisation, pooling, attention and the nonlinearities (digest §1.1). ``init='svd'``
    sets each layer's feedback to the truncated SVD of its copied weight (at full rank the
    converted model then has backprop's gradients); ``'random'`` keeps random feedback.
    Returns ``module`` (a bare ``nn.Linear`` / ``nn.Conv2d`` is returned converted).
    """
    _check_rule(rule)
    if init not in ("svd", "random"):
        from ._params import ParamError

        raise ParamError("init", "one of svd, random", init)

    def swap(m):
        like = {"device": m.weight.device, "dtype": m.weight.dtype}
        if type(m) is nn.Linear:
            new = LDFALinear(
                m.in_features, m.out_features, m.bias is not None,
                r=r, rule=rule, init="random", **like,
            )  # fmt: skip
        else:
            new = LDFAConv2d(
                m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                m.dilation, m.bias is not None, r=r, rule=rule, init="random", **like,
            )  # fmt: skip
        with torch.no_grad():
            new.weight.copy_(m.weight)
            if m.bias is not None:
                new.bias.copy_(m.bias)
        new.train(m.training)
        if init == "svd":
            new.reset_feedback_svd()
        return new

    if type(module) is nn.Linear or _convertible_conv(module):
        return swap(module)
    for name, child in list(module.named_children()):
        if type(child) is nn.Linear or _convertible_conv(child):
            setattr(module, name, swap(child))
        else:
            convert(child, r=r, rule=rule, init=init)
    return module
