// SyncBatchNorm in PyTorch's convention (torch.nn.SyncBatchNorm): in training, BatchNorm's
// statistics are those of the whole global batch, the shares of every rank of a process group
// together, so K ranks of B/K images normalise exactly as one process of B images would.
//
// Per channel, over the M = sum over ranks of N * H * W values:
//   mean, biased var   of all M values: what x is normalised with
//   running_mean       (1 - momentum) * running_mean + momentum * mean
//   running_var        (1 - momentum) * running_var + momentum * var * M / (M - 1)   (the global count)
//   num_batches_tracked  +1 per training forward, as BatchNorm2d
//   backward           sum(g) and sum(g * xhat) are summed over ranks, so dx is the global batch's;
//                      dweight and dbias stay this rank's sums, which DistributedDataParallel then
//                      averages with the others' (as PyTorch does)
// Evaluation mode normalises with the running statistics: nothing to synchronise.
//
// Each training forward makes one allreduce (per channel the ranks' sums, their sums of squared
// deviations from their own means, and the spread of those means: Chan's combination, in double)
// and each backward one, as PyTorch's. Every rank must run the layers in the same order, which a
// model with the same structure on every rank does: the autograd engine's order depends only on
// the graph. A rank out of step is detected (the channel counts are summed along) and reported.
#pragma once
#include <memory>

#include "maxgrad/core/ops.h"
#include "maxgrad/nn/dist/distributed.h"
#include "maxgrad/nn/module.h"

namespace mg::dist {

// x (N, C, ...), training mode. running_mean/var (C) or undefined; weight/bias (C) or undefined.
// The collectives run on the calling thread; every rank of `group` must call this.
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps,
                       const std::shared_ptr<ProcessGroup>& group);

// PyTorch's SyncBatchNorm.convert_sync_batchnorm(model, group): every BatchNorm2d in `model` takes
// its training statistics over `group` from now on (BatchNorm2d::process_group; parameters,
// buffers and state_dict names are unchanged). A null group turns them back into local ones.
// Returns how many layers it set.
int64_t convert_sync_batchnorm(nn::Module& model, std::shared_ptr<ProcessGroup> group);

}  // namespace mg::dist
