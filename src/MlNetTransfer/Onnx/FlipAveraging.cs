using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// Flip test-time augmentation folded into a saved graph: the pixels and their mirror image go through the graph as one
/// batch of two, and <c>Features</c> (what the softmax layer sees) is the mean of the two, so the stock ML.NET zip
/// predicts from both with no code of ours. The novelty score, where the graph has one, is that of the image as given. Only operators of opset 1 are added (Gather, Concat, Split, Add, Mul, Identity), with
/// the one change opset 18 made to Split, so any base's opset takes it.
/// </summary>
internal static class FlipAveraging
{
    private const string Prefix = "mlnt_flip_";
    private const string MirrorIndex = Prefix + "index";
    private const string Mirrored = Prefix + "mirrored";
    private const string Pair = Prefix + "pair";
    private const string Both = Prefix + "both";
    private const string Half = Prefix + "half";
    private const string NoveltyOfBoth = Prefix + "novelty_both";

    /// <summary>Whether <paramref name="model"/> already averages over the mirror image.</summary>
    public static bool IsWrapped(ModelProto model) => model.Graph.Node.Any(n => n.Name == Pair);

    /// <summary>A copy of <paramref name="model"/> (input <c>ImagePixels</c> [batch, 3, height, width]) that averages <c>Features</c> over each image and its mirror image.</summary>
    public static ModelProto Wrap(ModelProto model)
    {
        if (IsWrapped(model))
            return model.Clone();
        var wrapped = model.Clone();
        var graph = wrapped.Graph;
        var input = graph.Input.Single(i => i.Name == FeaturizerGraphBuilder.PixelsTensor);
        long width = input.Type.TensorType.Shape.Dim[3].DimValue;
        if (width <= 0)
            throw new InvalidOperationException("the graph's pixel input has no fixed width to mirror");

        foreach (var node in graph.Node)
            for (int i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == FeaturizerGraphBuilder.PixelsTensor)
                    node.Input[i] = Pair;
        var producer = graph.Node.Single(n => n.Output.Contains(FeaturizerGraphBuilder.FeaturesTensor));
        producer.Output[producer.Output.IndexOf(FeaturizerGraphBuilder.FeaturesTensor)] = Both;

        var reversed = new long[width];
        for (long x = 0; x < width; x++)
            reversed[x] = width - 1 - x;
        graph.Initializer.Add(OnnxGraph.Int64Tensor(MirrorIndex, [width], reversed));
        graph.Initializer.Add(OnnxGraph.FloatTensor(Half, [], [0.5f]));
        graph.Node.Insert(0, OnnxGraph.Node("Gather", Mirrored, [FeaturizerGraphBuilder.PixelsTensor, MirrorIndex], [Mirrored], OnnxGraph.Int("axis", 3)));
        graph.Node.Insert(1, OnnxGraph.Node("Concat", Pair, [FeaturizerGraphBuilder.PixelsTensor, Mirrored], [Pair], OnnxGraph.Int("axis", 0)));

        long opset = OnnxGraph.DefaultOpset(wrapped);
        // The pair back into its halves (opset 18 made Split name its number of outputs).
        void SplitInTwo(string name, string input, string first, string second)
        {
            var split = OnnxGraph.Node("Split", name, [input], [first, second], OnnxGraph.Int("axis", 0));
            if (opset >= 18)
                split.Attribute.Add(OnnxGraph.Int("num_outputs", 2));
            graph.Node.Add(split);
        }
        SplitInTwo(Prefix + "split", Both, Prefix + "as_is", Prefix + "as_mirrored");
        graph.Node.Add(OnnxGraph.Node("Add", Prefix + "sum", [Prefix + "as_is", Prefix + "as_mirrored"], [Prefix + "sum"]));
        graph.Node.Add(OnnxGraph.Node("Mul", Prefix + "mean", [Prefix + "sum", Half], [FeaturizerGraphBuilder.FeaturesTensor]));

        // The novelty score is the image's as given (its threshold was set on images as given).
        if (graph.Node.SingleOrDefault(n => n.Output.Contains(NoveltyGraph.NoveltyTensor)) is { } novelty)
        {
            novelty.Output[novelty.Output.IndexOf(NoveltyGraph.NoveltyTensor)] = NoveltyOfBoth;
            SplitInTwo(Prefix + "novelty_split", NoveltyOfBoth, Prefix + "novelty_as_is", Prefix + "novelty_mirrored");
            graph.Node.Add(OnnxGraph.Node("Identity", Prefix + "novelty", [Prefix + "novelty_as_is"], [NoveltyGraph.NoveltyTensor]));
        }
        return wrapped;
    }

    /// <summary>The reverse, for continued training: the graph as it was before <see cref="Wrap"/> (itself when it is not wrapped).</summary>
    public static ModelProto Unwrap(ModelProto model)
    {
        var plain = model.Clone();
        if (!IsWrapped(plain))
            return plain;
        var graph = plain.Graph;
        foreach (var node in graph.Node.Where(n => n.Name.StartsWith(Prefix, StringComparison.Ordinal)).ToList())
            graph.Node.Remove(node);
        foreach (var init in graph.Initializer.Where(t => t.Name is MirrorIndex or Half).ToList())
            graph.Initializer.Remove(init);
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == Pair)
                    node.Input[i] = FeaturizerGraphBuilder.PixelsTensor;
            for (int i = 0; i < node.Output.Count; i++)
                if (node.Output[i] == Both)
                    node.Output[i] = FeaturizerGraphBuilder.FeaturesTensor;
                else if (node.Output[i] == NoveltyOfBoth)
                    node.Output[i] = NoveltyGraph.NoveltyTensor;
        }
        return plain;
    }
}
