using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>
/// ONNX BatchNormalization (inputs X, scale, B, mean, var; epsilon, momentum). With running statistics by default; with
/// batch statistics while <see cref="OpContext.UseBatchStatistics"/> holds, updating the running ones in place the ONNX
/// way: running = running * momentum + batch * (1 - momentum), the batch variance being the population (biased) one.
/// PyTorch's momentum is the complement (1 - momentum) and it updates with the unbiased variance.
/// </summary>
internal static class BatchNormalizationOp
{
    public static NodeKernel Compile(NodeProto node, OpContext context)
    {
        if (context.Opset < 9 && node.Int("spatial", 1) == 0)
            throw new NotSupportedException($"BatchNormalization {node.Describe()}: spatial=0 (per-activation statistics) is not supported.");
        double epsilon = node.Float("epsilon", 1e-5f);
        double momentum = node.Float("momentum", 0.9f);
        return inputs =>
        {
            Tensor x = inputs[0]!, scale = inputs[1]!, bias = inputs[2]!, mean = inputs[3]!, variance = inputs[4]!;
            if (!context.UseBatchStatistics())
                return F.batch_norm(x, mean, variance, scale, bias, training: false, momentum: 0, eps: epsilon);

            using var scope = torch.NewDisposeScope();
            var axes = Enumerable.Range(0, (int)x.ndim).Where(a => a != 1).Select(a => (long)a).ToArray();
            var (batchVariance, batchMean) = torch.var_mean(x, axes, unbiased: false, keepdim: true);
            var shape = Enumerable.Range(0, (int)x.ndim).Select(a => a == 1 ? -1L : 1L).ToArray();
            var y = (x - batchMean) * torch.rsqrt(batchVariance + epsilon) * scale.reshape(shape) + bias.reshape(shape);
            using (torch.no_grad())
            {
                mean.mul_(momentum).add_(batchMean.detach().reshape(-1), alpha: 1 - momentum);
                variance.mul_(momentum).add_(batchVariance.detach().reshape(-1), alpha: 1 - momentum);
            }
            return y.MoveToOuterDisposeScope();
        };
    }
}
