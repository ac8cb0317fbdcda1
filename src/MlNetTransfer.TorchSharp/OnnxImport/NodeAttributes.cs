using Onnx;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>Reads a node's attributes with the defaults the ONNX operator specs give.</summary>
internal static class NodeAttributes
{
    public static bool Has(this NodeProto node, string name) => node.Attribute.Any(a => a.Name == name);

    public static long Int(this NodeProto node, string name, long fallback) =>
        Find(node, name) is { } a ? a.I : fallback;

    public static float Float(this NodeProto node, string name, float fallback) =>
        Find(node, name) is { } a ? a.F : fallback;

    public static string String(this NodeProto node, string name, string fallback) =>
        Find(node, name) is { } a ? a.S.ToStringUtf8() : fallback;

    public static long[]? Ints(this NodeProto node, string name) =>
        Find(node, name) is { } a ? a.Ints.ToArray() : null;

    /// <summary>How errors name a node: its name (or its first output when unnamed) and its op.</summary>
    public static string Describe(this NodeProto node) =>
        $"'{(node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault() ?? "?")}' ({node.OpType})";

    private static AttributeProto? Find(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name);
}
