using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// Writes trained weights back into ONNX: the composed featurizer graph with the tuned block's initializers replaced
/// and, for an MLP head, its hidden layer (Gemm + Relu) appended, so <c>Features</c> is what the softmax layer sees.
/// The frozen prefix's initializers are copied untouched.
/// </summary>
internal static class TunedGraphWriter
{
    private const string PooledTensor = "mlnt_pooled_features";
    private const string HiddenNode = "mlnt_head_hidden";
    private const string HiddenWeights = "mlnt_head_hidden_weight";
    private const string HiddenBiases = "mlnt_head_hidden_bias";

    /// <param name="composed">The composed graph trained from.</param>
    /// <param name="tuned">New values of initializers (the unfrozen block's), by name; null when only the head trained.</param>
    /// <param name="hidden">The MLP head's hidden layer: weights [units * inputs], row-major, and biases; null for a softmax head.</param>
    public static ModelProto Write(ModelProto composed, IReadOnlyDictionary<string, float[]>? tuned, (float[] Weights, float[] Biases)? hidden)
    {
        var model = composed.Clone();
        var graph = model.Graph;
        if (tuned is not null)
        {
            for (int i = 0; i < graph.Initializer.Count; i++)
            {
                var init = graph.Initializer[i];
                if (!tuned.TryGetValue(init.Name, out var value))
                    continue;
                var values = value;
                if (values.Length != init.Dims.Aggregate(1L, (a, b) => a * b))
                    throw new InvalidOperationException($"tuned '{init.Name}' has {values.Length} values for dims [{string.Join(",", init.Dims)}]");
                graph.Initializer[i] = OnnxGraph.FloatTensor(init.Name, init.Dims.ToArray(), values);
            }
        }
        if (hidden is { } layer)
        {
            long units = layer.Biases.Length, inputs = layer.Weights.Length / units;
            var producer = graph.Node.Single(n => n.Output.Contains(FeaturizerGraphBuilder.FeaturesTensor));
            producer.Output[producer.Output.IndexOf(FeaturizerGraphBuilder.FeaturesTensor)] = PooledTensor;
            graph.Initializer.Add(OnnxGraph.FloatTensor(HiddenWeights, [units, inputs], layer.Weights));
            graph.Initializer.Add(OnnxGraph.FloatTensor(HiddenBiases, [units], layer.Biases));
            graph.Node.Add(OnnxGraph.Node("Gemm", HiddenNode, [PooledTensor, HiddenWeights, HiddenBiases], [HiddenNode], OnnxGraph.Int("transB", 1)));
            graph.Node.Add(OnnxGraph.Node("Relu", HiddenNode + "_relu", [HiddenNode], [FeaturizerGraphBuilder.FeaturesTensor]));
            graph.Output.Clear();
            graph.Output.Add(OnnxGraph.FloatValueInfo(FeaturizerGraphBuilder.FeaturesTensor, "batch", units));
        }
        return model;
    }

    /// <summary>
    /// The reverse, for continued training: the composed graph without an MLP hidden layer, and that layer's weights
    /// (null for a linear head).
    /// </summary>
    public static (ModelProto Composed, float[]? Weights, float[]? Biases, int Units) SplitHead(ModelProto saved)
    {
        var model = saved.Clone();
        var graph = model.Graph;
        var gemm = graph.Node.FirstOrDefault(n => n.Name == HiddenNode);
        if (gemm is null)
            return (model, null, null, 0);
        var w = graph.Initializer.Single(t => t.Name == HiddenWeights);
        var b = graph.Initializer.Single(t => t.Name == HiddenBiases);
        int units = (int)w.Dims[0];
        var weights = OnnxGraph.ReadFloats(w);
        var biases = OnnxGraph.ReadFloats(b);
        graph.Node.Remove(gemm);
        graph.Node.Remove(graph.Node.Single(n => n.Name == HiddenNode + "_relu"));
        graph.Initializer.Remove(w);
        graph.Initializer.Remove(b);
        var producer = graph.Node.Single(n => n.Output.Contains(PooledTensor));
        producer.Output[producer.Output.IndexOf(PooledTensor)] = FeaturizerGraphBuilder.FeaturesTensor;
        graph.Output.Clear();
        graph.Output.Add(OnnxGraph.FloatValueInfo(FeaturizerGraphBuilder.FeaturesTensor, "batch", -1));
        return (model, weights, biases, units);
    }
}
