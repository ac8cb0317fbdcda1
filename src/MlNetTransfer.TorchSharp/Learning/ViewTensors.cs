using System.Runtime.InteropServices;
using MlNetTransfer.Featurization;
using MlNetTransfer.TorchSharp.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.Learning;

/// <summary>Views (as the featurization pipeline keeps them) as tensors, and predictions on them.</summary>
internal static class ViewTensors
{
    private const int EvalBatch = 64;

    /// <summary>A batch [n, ...shape] of views: (image, view) pairs, view 0 the plain one.</summary>
    public static Tensor Of(ViewSet set, IReadOnlyList<(int Image, int View)> items)
    {
        int length = set.Length;
        // Written straight into the tensor's memory: a managed array per batch (12 MB at stage4) would only be garbage.
        var batch = empty([items.Count, .. set.Shape.Select(d => (long)d)], ScalarType.Float32);
        var data = MemoryMarshal.Cast<byte, float>(batch.bytes);
        for (int i = 0; i < items.Count; i++)
            set.Images[items[i].Image].Views.CopyTo(items[i].View, data.Slice(i * length, length));
        return batch;
    }

    /// <summary>Pooled features of every view (or only the plain ones), through the frozen suffix, and their labels.</summary>
    public static (Tensor X, Tensor Y) Pooled(nn.Module<Tensor, Tensor>? suffix, ViewSet set, Dictionary<string, long> classIndex, bool plainOnly = false)
    {
        var items = set.Images.SelectMany((image, i) => Enumerable.Range(0, plainOnly ? 1 : image.Views.Count).Select(v => (i, v))).ToList();
        var labels = tensor(items.Select(it => classIndex[set.Images[it.i].Image.Label]).ToArray());
        if (items.Count == 0)
            return (empty(0), labels);
        var parts = new List<Tensor>();
        suffix?.eval();
        using (no_grad())
        {
            for (int start = 0; start < items.Count; start += EvalBatch)
            {
                var x = Of(set, items.Skip(start).Take(EvalBatch).ToList());
                if (suffix is null)
                    parts.Add(x.reshape(x.shape[0], -1));
                else
                    using (x) // the boundary activations (200 KB a view at stage4) go once pooled
                        parts.Add(suffix.forward(x));
            }
        }
        return (cat(parts, 0), labels);
    }

    /// <summary>Batches of the plain views, in order.</summary>
    public static IEnumerable<Tensor> PlainBatches(ViewSet set)
    {
        for (int start = 0; start < set.Images.Count; start += EvalBatch)
            yield return Of(set, Enumerable.Range(start, Math.Min(EvalBatch, set.Images.Count - start)).Select(i => (i, 0)).ToList());
    }

    /// <summary>Validation loss and accuracy on the plain views (NaN, NaN without images).</summary>
    public static (double Loss, double Accuracy) Evaluate(nn.Module<Tensor, Tensor>? suffix, ClassifierHead head, ViewSet set, long[] labels)
    {
        if (labels.Length == 0)
            return (double.NaN, double.NaN);
        suffix?.eval();
        head.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var logits = cat(PlainBatches(set).Select(x => head.forward(suffix is null ? x.reshape(x.shape[0], -1) : suffix.forward(x))).ToList(), 0);
        return Score(logits, tensor(labels));
    }

    /// <summary>Cross-entropy loss and accuracy of logits against integer labels.</summary>
    public static (double Loss, double Accuracy) Score(Tensor logits, Tensor labels) =>
        (nn.functional.cross_entropy(logits, labels).item<float>(), logits.argmax(1).eq(labels).to_type(ScalarType.Float64).mean().item<double>());

    /// <summary>Softmax of the current weights on the plain view of each image.</summary>
    public static float[][] Probabilities(nn.Module<Tensor, Tensor>? suffix, ClassifierHead head, ViewSet set)
    {
        suffix?.eval();
        head.eval();
        using var _ = no_grad();
        var rows = new List<float[]>();
        foreach (var x in PlainBatches(set))
        {
            // A scope a batch: one for the whole pass would hold every batch's tensors (12 MB each at stage4) to its end.
            using var scope = NewDisposeScope();
            using var input = x;
            var features = suffix is null ? x.reshape(x.shape[0], -1) : suffix.forward(x);
            var p = nn.functional.softmax(head.forward(features), 1).contiguous();
            var flat = p.data<float>().ToArray();
            int k = (int)p.shape[1];
            for (int i = 0; i < p.shape[0]; i++)
                rows.Add(flat.AsSpan(i * k, k).ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>The suffix's output (pooled features) on the plain view of each image; the views themselves without a suffix.</summary>
    public static float[][] Features(nn.Module<Tensor, Tensor>? suffix, ViewSet set)
    {
        if (suffix is null)
            return set.Images.Select(i => i.Plain).ToArray();
        suffix.eval();
        using var _ = no_grad();
        var rows = new List<float[]>();
        foreach (var x in PlainBatches(set))
        {
            using var scope = NewDisposeScope();
            using var input = x;
            var f = suffix.forward(x).reshape(x.shape[0], -1).contiguous();
            var flat = f.data<float>().ToArray();
            int k = (int)f.shape[1];
            for (int i = 0; i < f.shape[0]; i++)
                rows.Add(flat.AsSpan(i * k, k).ToArray());
        }
        return rows.ToArray();
    }

    public static long[] Permutation(Random random, int n)
    {
        var order = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        random.Shuffle(order);
        return order;
    }
}
