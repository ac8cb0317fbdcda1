using System.Runtime.InteropServices;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>Values of ONNX tensors (initializers, Constant nodes): floats become float32, integers int64.</summary>
internal static class OnnxTensorValues
{
    public static bool IsFloat(TensorProto t) => (DataType)t.DataType is DataType.Float or DataType.Double or DataType.Float16;

    public static bool IsInteger(TensorProto t) => (DataType)t.DataType is DataType.Int64 or DataType.Int32 or DataType.Int16 or DataType.Int8 or DataType.Uint8;

    /// <summary>The value as a CPU tensor of the same shape: float32 for float types, int64 for integer types.</summary>
    public static Tensor ToTorch(TensorProto t)
    {
        long[] dims = t.Dims.ToArray();
        if (IsFloat(t))
            return torch.tensor(ReadFloats(t), dims, ScalarType.Float32);
        if (IsInteger(t))
            return torch.tensor(ReadInt64s(t), dims, ScalarType.Int64);
        throw new NotSupportedException($"ONNX tensor '{t.Name}' has data type {(DataType)t.DataType}; only float and integer tensors are supported.");
    }

    public static float[] ReadFloats(TensorProto t)
    {
        RequireInline(t);
        switch ((DataType)t.DataType)
        {
            case DataType.Float:
                return t.FloatData.Count > 0 ? t.FloatData.ToArray() : MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
            case DataType.Double:
                return (t.DoubleData.Count > 0 ? t.DoubleData.ToArray() : MemoryMarshal.Cast<byte, double>(t.RawData.Span).ToArray())
                    .Select(d => (float)d).ToArray();
            case DataType.Float16:
                // float16 values sit in int32_data, one per element, or in raw_data.
                return t.Int32Data.Count > 0
                    ? t.Int32Data.Select(bits => (float)BitConverter.UInt16BitsToHalf((ushort)bits)).ToArray()
                    : MemoryMarshal.Cast<byte, Half>(t.RawData.Span).ToArray().Select(h => (float)h).ToArray();
            default:
                throw new NotSupportedException($"ONNX tensor '{t.Name}' is {(DataType)t.DataType}, not a float type.");
        }
    }

    public static long[] ReadInt64s(TensorProto t)
    {
        RequireInline(t);
        bool raw = t.RawData.Length > 0;
        return (DataType)t.DataType switch
        {
            DataType.Int64 => raw ? MemoryMarshal.Cast<byte, long>(t.RawData.Span).ToArray() : t.Int64Data.ToArray(),
            DataType.Int32 => raw ? MemoryMarshal.Cast<byte, int>(t.RawData.Span).ToArray().Select(v => (long)v).ToArray() : t.Int32Data.Select(v => (long)v).ToArray(),
            DataType.Int16 => raw ? MemoryMarshal.Cast<byte, short>(t.RawData.Span).ToArray().Select(v => (long)v).ToArray() : t.Int32Data.Select(v => (long)v).ToArray(),
            DataType.Int8 => raw ? MemoryMarshal.Cast<byte, sbyte>(t.RawData.Span).ToArray().Select(v => (long)v).ToArray() : t.Int32Data.Select(v => (long)v).ToArray(),
            DataType.Uint8 => raw ? t.RawData.Span.ToArray().Select(v => (long)v).ToArray() : t.Int32Data.Select(v => (long)v).ToArray(),
            _ => throw new NotSupportedException($"ONNX tensor '{t.Name}' is {(DataType)t.DataType}, not an integer type."),
        };
    }

    /// <summary>The value of a Constant node (opsets 1..17: value, value_float(s), value_int(s)), named after its output.</summary>
    public static TensorProto ConstantNodeValue(NodeProto node)
    {
        var name = node.Output[0];
        foreach (var a in node.Attribute)
        {
            switch (a.Name)
            {
                case "value":
                    var t = a.T.Clone();
                    t.Name = name;
                    return t;
                case "value_float":
                    return Float(name, [], [a.F]);
                case "value_floats":
                    return Float(name, [a.Floats.Count], a.Floats.ToArray());
                case "value_int":
                    return Int64(name, [], [a.I]);
                case "value_ints":
                    return Int64(name, [a.Ints.Count], a.Ints.ToArray());
            }
        }
        throw new NotSupportedException($"Constant node {node.Describe()} holds a kind of value that is not supported (only tensors, floats and ints are).");
    }

    private static TensorProto Float(string name, long[] dims, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
        t.Dims.AddRange(dims);
        t.FloatData.AddRange(values);
        return t;
    }

    private static TensorProto Int64(string name, long[] dims, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        t.Dims.AddRange(dims);
        t.Int64Data.AddRange(values);
        return t;
    }

    private static void RequireInline(TensorProto t)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new NotSupportedException($"ONNX tensor '{t.Name}' is stored in an external data file, which is not supported.");
    }
}
