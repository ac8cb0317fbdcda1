using Google.Protobuf;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>Small helpers for reading and editing ONNX graphs (OnnxSharp's protobuf classes).</summary>
internal static class OnnxGraph
{
    /// <summary>Parses an ONNX file with an error that names it.</summary>
    public static ModelProto Load(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var model = ModelProto.Parser.ParseFrom(stream);
            if (model.Graph is null || model.Graph.Node.Count == 0)
                throw new InvalidDataException("it holds no graph");
            return model;
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidDataException or IOException)
        {
            throw new Backbones.ConvBaseException($"'{path}' is not a readable ONNX model: {e.Message}", e);
        }
    }

    /// <summary>Graph inputs that are real inputs, not initializers listed as inputs (old exporters do that).</summary>
    public static IReadOnlyList<ValueInfoProto> RealInputs(GraphProto graph)
    {
        var initializers = graph.Initializer.Select(i => i.Name).ToHashSet();
        return graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
    }

    /// <summary>Declared dims of a tensor (inputs, outputs, value_info); -1 for symbolic, null when undeclared.</summary>
    public static long[]? DeclaredShape(GraphProto graph, string tensor)
    {
        var info = graph.Input.Concat(graph.Output).Concat(graph.ValueInfo).FirstOrDefault(v => v.Name == tensor);
        if (info?.Type?.TensorType?.Shape is not { } shape)
            return null;
        return shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1L).ToArray();
    }

    /// <summary>Removes every node (and initializer) that the given outputs do not depend on.</summary>
    public static void PruneTo(GraphProto graph, IReadOnlyCollection<string> outputs)
    {
        var needed = new HashSet<string>(outputs);
        var keep = new List<NodeProto>();
        foreach (var node in graph.Node.Reverse())
        {
            if (!node.Output.Any(needed.Contains))
                continue;
            keep.Add(node);
            foreach (var input in node.Input.Where(i => i.Length > 0))
                needed.Add(input);
        }
        keep.Reverse();
        graph.Node.Clear();
        graph.Node.AddRange(keep);
        var unused = graph.Initializer.Where(i => !needed.Contains(i.Name)).ToList();
        foreach (var init in unused)
            graph.Initializer.Remove(init);
        var unusedInputs = graph.Input.Where(i => !needed.Contains(i.Name)).ToList();
        foreach (var input in unusedInputs)
            graph.Input.Remove(input);
    }

    public static NodeProto Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static TensorProto FloatTensor(string name, long[] dims, ReadOnlySpan<float> values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
        return t;
    }

    public static TensorProto Int64Tensor(string name, long[] dims, ReadOnlySpan<long> values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
        return t;
    }

    /// <summary>Float values of an initializer, whichever field holds them.</summary>
    public static float[] ReadFloats(TensorProto tensor)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"initializer '{tensor.Name}' is not float32");
        if (tensor.FloatData.Count > 0)
            return tensor.FloatData.ToArray();
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
            throw new InvalidDataException($"initializer '{tensor.Name}' is stored in an external file, which is not supported");
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray();
    }

    /// <summary>A float tensor value info with a symbolic batch dimension and the given other dims (-1 = unknown).</summary>
    public static ValueInfoProto FloatValueInfo(string name, string batchDim, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batchDim });
        foreach (var d in dims)
            shape.Dim.Add(d >= 0 ? new TensorShapeProto.Types.Dimension { DimValue = d } : new TensorShapeProto.Types.Dimension { DimParam = "d" + shape.Dim.Count });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    /// <summary>A copy of the model whose only output is <paramref name="tensor"/> (type float, shape left to ORT), pruned to what it needs.</summary>
    public static ModelProto CutAt(ModelProto model, string tensor)
    {
        var cut = model.Clone();
        cut.Graph.Output.Clear();
        cut.Graph.Output.Add(new ValueInfoProto
        {
            Name = tensor,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
        });
        PruneTo(cut.Graph, [tensor]);
        return cut;
    }

    /// <summary>The version of the default (ai.onnx) operator set the model imports; 1 when it names none.</summary>
    public static long DefaultOpset(ModelProto model) => model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 1;

    /// <summary>Writes the model to a temp file beside <paramref name="path"/>, then renames it into place.</summary>
    public static void Save(ModelProto model, string path) =>
        IO.AtomicFile.Write(path, stream => model.WriteTo(stream));
}
