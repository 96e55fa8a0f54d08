"""Prints the expected values pasted into tests/test_ops_values.cpp, computed by PyTorch in float64.

The inputs are the same deterministic pattern on both sides (pattern() below and in the .cpp), so the
C++ test needs no Python: rerun this (`python3 tests/gen_ops_values.py`) only to add a case, paste
its output over the block of k_ constants and run clang-format on the file.
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def pattern(shape, k=0):
    # element i = ((37 i + 11 k) mod 23) / 7 - 1.5: exact in double, in [-1.5, 1.65), few ties
    n = 1
    for s in shape:
        n *= s
    v = [((37 * i + 11 * k) % 23) / 7.0 - 1.5 for i in range(n)]
    return torch.tensor(v).reshape(shape)


def emit(name, t):
    vals = [repr(float(x)) for x in t.detach().reshape(-1).tolist()]
    lines, line = [], "   "
    for v in vals:
        if len(line) + len(v) + 2 > 110:
            lines.append(line)
            line = "   "
        line += " " + v + ","
    lines.append(line)
    print(f"const std::vector<double> {name} = {{")
    print("\n".join(lines).rstrip(","))
    print("};")


x = pattern((2, 5))
for fn in ["exp", "tanh", "sigmoid", "relu"]:
    emit(f"k_{fn}", getattr(torch, fn)(x))
emit("k_silu", F.silu(x))
emit("k_gelu", F.gelu(x))  # exact erf form (approximate="none")
xp = pattern((2, 5)) + 1.6  # positive
emit("k_log", torch.log(xp))
emit("k_sqrt", torch.sqrt(xp))
emit("k_rsqrt", torch.rsqrt(xp))
emit("k_pow", torch.pow(xp, 1.7))

x = pattern((2, 3, 4))
emit("k_softmax_dim1", F.softmax(x, 1))
emit("k_softmax_last", F.softmax(x * 3, -1))
emit("k_log_softmax_dim0", F.log_softmax(x, 0))

logits = pattern((4, 5)).requires_grad_()
target = torch.tensor([1, 0, 4, 2])
loss = F.cross_entropy(logits * 2, target, label_smoothing=0.1)
loss.backward()
emit("k_ce_smooth", loss.reshape(1))
emit("k_ce_smooth_grad", logits.grad)
emit("k_ce_plain", F.cross_entropy(pattern((4, 5)) * 2, target).reshape(1))

x = pattern((2, 3, 6)).requires_grad_()
w = (pattern((6,), 1) * 0.5 + 1).requires_grad_()
b = (pattern((6,), 2) * 0.1).requires_grad_()
y = F.layer_norm(x, (6,), w, b, 1e-5)
emit("k_layer_norm", y)
(y * pattern((2, 3, 6), 3)).sum().backward()
emit("k_layer_norm_grad_x", x.grad)
emit("k_layer_norm_grad_w", w.grad)
emit("k_layer_norm_grad_b", b.grad)

x = pattern((3, 2, 2, 3)).requires_grad_()
w = (pattern((2,), 1) + 2).requires_grad_()
b = pattern((2,), 2).requires_grad_()
rm, rv = torch.zeros(2), torch.ones(2)
y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
emit("k_batch_norm", y)
emit("k_batch_norm_running_mean", rm)
emit("k_batch_norm_running_var", rv)
(y * pattern((3, 2, 2, 3), 3)).sum().backward()
emit("k_batch_norm_grad_x", x.grad)
emit("k_batch_norm_grad_w", w.grad)

x = pattern((3, 4))
emit("k_var_dim1", torch.var(x, 1, unbiased=True))
emit("k_var_all", torch.var(x, unbiased=True).reshape(1))
emit("k_var_dim0_biased", torch.var(x, 0, unbiased=False))

x = pattern((2, 4, 5, 5)).requires_grad_()
w = (pattern((6, 2, 3, 3), 1) * 0.5).requires_grad_()
b = pattern((6,), 2)
y = F.conv2d(x, w, b, stride=2, padding=1, groups=2)
emit("k_conv_groups", y)
(y * pattern(tuple(y.shape), 3)).sum().backward()
emit("k_conv_groups_grad_x", x.grad)
emit("k_conv_groups_grad_w", w.grad)
emit("k_conv_depthwise", F.conv2d(pattern((1, 3, 4, 4)), pattern((3, 1, 3, 3), 1), pattern((3,), 2), padding=1, groups=3))
emit("k_conv_1x1", F.conv2d(pattern((1, 3, 3, 3)), pattern((2, 3, 1, 1), 1)))

x = pattern((1, 2, 5, 5))
emit("k_avg_pool_incl", F.avg_pool2d(x, 3, 2, 1, count_include_pad=True))
emit("k_avg_pool_excl", F.avg_pool2d(x, 3, 2, 1, count_include_pad=False))

emit("k_matmul_batched", torch.matmul(pattern((2, 3, 4)), pattern((4, 5), 1)))
emit("k_matmul_vec", torch.matmul(pattern((4,)), pattern((2, 4, 3), 1)))
emit("k_linear", F.linear(pattern((2, 4)), pattern((3, 4), 1), pattern((3,), 2)))
