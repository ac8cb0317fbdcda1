using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// Folds an inference-mode BatchNormalization into the Conv in front of it: W'[m] = W[m]·s[m], b'[m] = (b[m] − mean[m])·s[m] + beta[m]
/// with s = gamma / sqrt(var + epsilon). Done before int8 quantization, as ONNX Runtime's own quantization tool does, so
/// the weights that get quantized are the ones the Conv really multiplies with and a QDQ Conv can be fused whole.
/// </summary>
internal static class ConvBatchNormFolding
{
    /// <summary>
    /// Folds every BatchNormalization whose input is the output of a Conv that feeds nothing else (and is no graph
    /// output), where the Conv's weights and bias and the BN's parameters are float initializers. New initializers are
    /// added for the folded weights; the old ones are left for the caller to prune. Returns how many BN nodes were folded.
    /// </summary>
    public static int Fold(GraphProto graph)
    {
        var initializers = graph.Initializer.ToDictionary(i => i.Name);
        var graphOutputs = graph.Output.Select(o => o.Name).ToHashSet();
        var names = TensorNames.Of(graph);
        var consumers = new Dictionary<string, int>();
        foreach (var input in graph.Node.SelectMany(n => n.Input))
            consumers[input] = consumers.GetValueOrDefault(input) + 1;
        var producers = new Dictionary<string, NodeProto>();
        foreach (var node in graph.Node)
            foreach (var output in node.Output)
                producers[output] = node;

        var folded = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var bn in graph.Node.Where(n => n.OpType == "BatchNormalization" && n.Domain is "" or "ai.onnx").ToList())
        {
            if (bn.Input.Count != 5 || bn.Output.Skip(1).Any(o => o.Length > 0))
                continue; // training-mode outputs are asked for
            if (bn.Attribute.FirstOrDefault(a => a.Name == "spatial") is { I: 0 })
                continue;
            if (!producers.TryGetValue(bn.Input[0], out var conv) || conv.OpType != "Conv" || conv.Output.Count != 1)
                continue;
            if (consumers.GetValueOrDefault(conv.Output[0]) != 1 || graphOutputs.Contains(conv.Output[0]))
                continue;
            float[]? Floats(string name) => initializers.TryGetValue(name, out var t) && t.DataType == (int)TensorProto.Types.DataType.Float
                ? OnnxGraph.ReadFloats(t) : null;
            if (conv.Input.Count < 2 || !initializers.TryGetValue(conv.Input[1], out var weightTensor) || Floats(conv.Input[1]) is not { } weights)
                continue;
            int m = checked((int)weightTensor.Dims[0]);
            float[]? bias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? Floats(conv.Input[2]) : new float[m];
            var (gamma, beta, mean, variance) = (Floats(bn.Input[1]), Floats(bn.Input[2]), Floats(bn.Input[3]), Floats(bn.Input[4]));
            if (bias is null || gamma is null || beta is null || mean is null || variance is null)
                continue;
            if (new[] { bias, gamma, beta, mean, variance }.Any(a => a.Length != m))
                continue;
            double epsilon = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5;

            int perChannel = weights.Length / m;
            var newWeights = new float[weights.Length];
            var newBias = new float[m];
            for (int c = 0; c < m; c++)
            {
                double s = gamma[c] / Math.Sqrt(variance[c] + epsilon);
                for (int i = c * perChannel; i < (c + 1) * perChannel; i++)
                    newWeights[i] = (float)(weights[i] * s);
                newBias[c] = (float)((bias[c] - mean[c]) * s + beta[c]);
            }

            string stem = conv.Name.Length > 0 ? conv.Name : conv.Output[0];
            var wName = names.Fresh(stem + "_W_bnfolded");
            var bName = names.Fresh(stem + "_B_bnfolded");
            var w = OnnxGraph.FloatTensor(wName, weightTensor.Dims.ToArray(), newWeights);
            var b = OnnxGraph.FloatTensor(bName, [m], newBias);
            graph.Initializer.Add(w);
            graph.Initializer.Add(b);
            initializers[wName] = w;
            initializers[bName] = b;

            conv.Input[1] = wName;
            if (conv.Input.Count > 2)
                conv.Input[2] = bName;
            else
                conv.Input.Add(bName);
            conv.Output[0] = bn.Output[0];
            producers[bn.Output[0]] = conv;
            folded.Add(bn);
        }
        if (folded.Count > 0)
        {
            var kept = graph.Node.Where(n => !folded.Contains(n)).ToList();
            graph.Node.Clear();
            graph.Node.AddRange(kept);
        }
        return folded.Count;
    }
}

/// <summary>Every tensor name a graph uses, to make new names that clash with none.</summary>
internal sealed class TensorNames
{
    private readonly HashSet<string> _taken;

    private TensorNames(HashSet<string> taken) => _taken = taken;

    public static TensorNames Of(GraphProto graph)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        taken.UnionWith(graph.Input.Select(i => i.Name));
        taken.UnionWith(graph.Output.Select(o => o.Name));
        taken.UnionWith(graph.Initializer.Select(i => i.Name));
        taken.UnionWith(graph.ValueInfo.Select(v => v.Name));
        foreach (var node in graph.Node)
        {
            taken.UnionWith(node.Input);
            taken.UnionWith(node.Output);
            if (node.Name.Length > 0)
                taken.Add(node.Name);
        }
        return new TensorNames(taken);
    }

    /// <summary><paramref name="wanted"/>, or with the first free numeric suffix; reserved from then on.</summary>
    public string Fresh(string wanted)
    {
        var name = wanted;
        for (int i = 1; !_taken.Add(name); i++)
            name = $"{wanted}_{i}";
        return name;
    }
}
