using Onnx;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>
/// The part of an ONNX graph between a boundary tensor and an output tensor: the nodes that compute the output from the
/// boundary, and the constants (initializers, Constant nodes) they read. Anything else they read would be computed
/// before the boundary without passing through it (a residual connection from before), so the cut is refused.
/// </summary>
internal sealed class GraphCut
{
    private GraphCut(IReadOnlyList<NodeProto> nodes, IReadOnlyDictionary<string, TensorProto> constants, IReadOnlyList<string> initializerNames)
    {
        Nodes = nodes;
        Constants = constants;
        InitializerNames = initializerNames;
    }

    /// <summary>Nodes to run, in graph order (Constant nodes excluded: their values are in <see cref="Constants"/>).</summary>
    public IReadOnlyList<NodeProto> Nodes { get; }

    /// <summary>Every constant tensor the nodes read, initializers and Constant-node outputs, by name.</summary>
    public IReadOnlyDictionary<string, TensorProto> Constants { get; }

    /// <summary>Names of the initializers the nodes read, in order of first use.</summary>
    public IReadOnlyList<string> InitializerNames { get; }

    public static GraphCut Select(ModelProto model, string input, string output)
    {
        var graph = model.Graph ?? throw new OnnxImportException("The ONNX model holds no graph.");
        var initializers = new Dictionary<string, TensorProto>();
        foreach (var t in graph.Initializer)
            initializers[t.Name] = t;
        var producers = new Dictionary<string, NodeProto>();
        foreach (var node in graph.Node)
            foreach (var o in node.Output.Where(o => o.Length > 0))
                producers[o] = node;

        bool isGraphInput = graph.Input.Any(i => i.Name == input) && !initializers.ContainsKey(input);
        if (!isGraphInput && !producers.ContainsKey(input))
            throw new OnnxImportException($"The graph has no tensor '{input}' to start from (neither a graph input nor a node output).");
        if (output != input && !producers.ContainsKey(output))
            throw new OnnxImportException($"The graph has no node output '{output}'.");

        // Forward: every tensor computed from the boundary.
        var fromInput = new HashSet<string> { input };
        foreach (var node in graph.Node)
            if (node.Input.Any(fromInput.Contains))
                foreach (var o in node.Output.Where(o => o.Length > 0))
                    fromInput.Add(o);
        if (!fromInput.Contains(output))
            throw new OnnxImportException($"'{output}' does not depend on '{input}': no path leads from the boundary to the output.");

        // Backward from the output through nodes that depend on the boundary; stop at the boundary itself.
        var needed = new HashSet<string> { output };
        var used = new HashSet<NodeProto>();
        for (int i = graph.Node.Count - 1; i >= 0; i--)
        {
            var node = graph.Node[i];
            if (!node.Output.Any(needed.Contains) || !node.Output.Any(fromInput.Contains))
                continue;
            used.Add(node);
            foreach (var name in node.Input.Where(n => n.Length > 0 && n != input))
                needed.Add(name);
        }
        var nodes = graph.Node.Where(used.Contains).ToList();

        var constants = new Dictionary<string, TensorProto>();
        var initializerNames = new List<string>();
        foreach (var node in nodes)
        {
            foreach (var name in node.Input.Where(n => n.Length > 0 && !fromInput.Contains(n)))
            {
                if (constants.ContainsKey(name))
                    continue;
                if (initializers.TryGetValue(name, out var init))
                {
                    constants[name] = init;
                    initializerNames.Add(name);
                }
                else if (producers.TryGetValue(name, out var producer) && producer.OpType == "Constant" && producer.Domain is "" or "ai.onnx")
                {
                    constants[name] = OnnxTensorValues.ConstantNodeValue(producer);
                }
                else
                {
                    var origin = producers.TryGetValue(name, out var p) ? $"computed by node {p.Describe()}, which does not depend on the boundary" : "a graph input other than the boundary";
                    throw new OnnxImportException(
                        $"Tensor '{name}' crosses the cut between '{input}' and '{output}': node {node.Describe()} reads it, but it is {origin} " +
                        "(e.g. a residual connection from before the boundary). Choose a boundary that cuts the graph cleanly, such as the end of a block.");
                }
            }
        }
        return new GraphCut(nodes, constants, initializerNames);
    }
}
