using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// The novelty score as a second output of the saved featurizer graph, so the stock ML.NET zip returns it beside
/// <c>Score</c> with no code of ours: the pooled features, L2-normalised, whitened by one MatMul, their squared distance
/// to each whitened class mean (|z|^2 - 2 z.m + |m|^2), the smallest of them, divided by the feature length
/// (<see cref="Training.NoveltyScorer"/> computes the same in C#). Only Reduce*, MatMul, Div, Max, Mul, Add and Relu are
/// added, with the reduction axes as an attribute or, from opset 18, an input.
/// </summary>
internal static class NoveltyGraph
{
    /// <summary>Graph output and zip column: [batch, 1].</summary>
    public const string NoveltyTensor = "Novelty";

    /// <summary>Smallest norm a feature vector is divided by (a vector of zeros would give NaN).</summary>
    public const float NormFloor = 1e-12f;

    private const string Prefix = "mlnt_novelty_";

    /// <summary>The pooled-features tensor the MLP hidden layer reads, when there is one (TunedGraphWriter's name).</summary>
    private const string MlpPooledTensor = "mlnt_pooled_features";

    private const string PooledTensor = Prefix + "pooled";

    public static bool HasNovelty(ModelProto model) => model.Graph.Output.Any(o => o.Name == NoveltyTensor);

    /// <summary>A copy of <paramref name="model"/> with the <c>Novelty</c> output computed from its pooled features.</summary>
    public static ModelProto Attach(ModelProto model, Training.NoveltyScorer scorer)
    {
        var copy = Detach(model);
        var graph = copy.Graph;
        string pooled = MlpPooledTensor;
        if (!graph.Node.Any(n => n.Output.Contains(MlpPooledTensor)))
        {
            // The pooled features under a name of their own, so that flip averaging (which averages what produces
            // Features) leaves the novelty reading each image's features, as given and mirrored.
            var producer = graph.Node.Single(n => n.Output.Contains(FeaturizerGraphBuilder.FeaturesTensor));
            producer.Output[producer.Output.IndexOf(FeaturizerGraphBuilder.FeaturesTensor)] = PooledTensor;
            graph.Node.Add(OnnxGraph.Node("Identity", Prefix + "features", [PooledTensor], [FeaturizerGraphBuilder.FeaturesTensor]));
            pooled = PooledTensor;
        }
        long opset = OnnxGraph.DefaultOpset(copy);
        int p = scorer.Length, k = scorer.WhitenedMeans.Length;
        var known = Enumerable.Range(0, k).Where(c => scorer.WhitenedMeans[c].Length > 0).ToList();

        graph.Initializer.Add(OnnxGraph.FloatTensor(Prefix + "floor", [], [NormFloor]));
        graph.Initializer.Add(OnnxGraph.FloatTensor(Prefix + "whitening", [p, p], scorer.Whitening));
        // Means as columns [p, classes] for z . m; their squared norms [classes].
        var meansT = new float[p * known.Count];
        var norms = new float[known.Count];
        for (int c = 0; c < known.Count; c++)
        {
            var m = scorer.WhitenedMeans[known[c]];
            double s = 0;
            for (int j = 0; j < p; j++)
            {
                meansT[j * known.Count + c] = m[j];
                s += (double)m[j] * m[j];
            }
            norms[c] = (float)s;
        }
        graph.Initializer.Add(OnnxGraph.FloatTensor(Prefix + "means", [p, known.Count], meansT));
        graph.Initializer.Add(OnnxGraph.FloatTensor(Prefix + "mean_norms", [known.Count], norms));
        graph.Initializer.Add(OnnxGraph.FloatTensor(Prefix + "minus_two", [], [-2f]));
        graph.Initializer.Add(OnnxGraph.FloatTensor(Prefix + "per_feature", [], [1f / p]));
        if (opset >= 18)
            graph.Initializer.Add(OnnxGraph.Int64Tensor(Prefix + "axis1", [1], [1L]));

        void Add(string op, string name, string[] inputs, params AttributeProto[] attributes) =>
            graph.Node.Add(OnnxGraph.Node(op, Prefix + name, inputs, [Prefix + name], attributes));
        void Reduce(string op, string name, string input)
        {
            if (opset >= 18)
                Add(op, name, [input, Prefix + "axis1"], OnnxGraph.Int("keepdims", 1));
            else
                Add(op, name, [input], OnnxGraph.Ints("axes", 1), OnnxGraph.Int("keepdims", 1));
        }
        Reduce("ReduceL2", "norm", pooled);
        Add("Max", "norm_floored", [Prefix + "norm", Prefix + "floor"]);
        Add("Div", "normalized", [pooled, Prefix + "norm_floored"]);
        Add("MatMul", "whitened", [Prefix + "normalized", Prefix + "whitening"]);
        Reduce("ReduceSumSquare", "whitened_norm", Prefix + "whitened");
        Add("MatMul", "dot", [Prefix + "whitened", Prefix + "means"]);
        Add("Mul", "dot_twice", [Prefix + "dot", Prefix + "minus_two"]);
        Add("Add", "partial", [Prefix + "dot_twice", Prefix + "whitened_norm"]);
        Add("Add", "distances", [Prefix + "partial", Prefix + "mean_norms"]);
        Reduce("ReduceMin", "nearest", Prefix + "distances");
        // Rounding can take a distance of ~0 below zero.
        Add("Relu", "nearest_clamped", [Prefix + "nearest"]);
        graph.Node.Add(OnnxGraph.Node("Mul", Prefix + "score", [Prefix + "nearest_clamped", Prefix + "per_feature"], [NoveltyTensor]));
        graph.Output.Add(OnnxGraph.FloatValueInfo(NoveltyTensor, "batch", 1));
        return copy;
    }

    /// <summary>The reverse, for continued training and for writing a new score: a copy without the novelty nodes.</summary>
    public static ModelProto Detach(ModelProto model)
    {
        var copy = model.Clone();
        var graph = copy.Graph;
        foreach (var node in graph.Node.Where(n => n.Name.StartsWith(Prefix, StringComparison.Ordinal)).ToList())
            graph.Node.Remove(node);
        foreach (var init in graph.Initializer.Where(t => t.Name.StartsWith(Prefix, StringComparison.Ordinal)).ToList())
            graph.Initializer.Remove(init);
        foreach (var output in graph.Output.Where(o => o.Name == NoveltyTensor).ToList())
            graph.Output.Remove(output);
        foreach (var node in graph.Node)
            for (int i = 0; i < node.Output.Count; i++)
                if (node.Output[i] == PooledTensor)
                    node.Output[i] = FeaturizerGraphBuilder.FeaturesTensor;
        return copy;
    }
}
