using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Onnx;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>ONNX Runtime as the reference for the ONNX -> TorchSharp importer, and small ONNX graphs to compare on.</summary>
public static class OrtReference
{
    /// <summary>A float tensor's values and shape.</summary>
    public sealed record Values(float[] Data, long[] Shape)
    {
        public Tensor ToTorch() => torch.tensor(Data, Shape);

        public static Values Of(Tensor t)
        {
            using var c = t.detach().contiguous();
            return new Values(c.data<float>().ToArray(), c.shape);
        }

        public double MaxAbsDiff(Values other)
        {
            Assert.Equal(Shape, other.Shape);
            double max = 0;
            for (int i = 0; i < Data.Length; i++)
                max = Math.Max(max, Math.Abs(Data[i] - other.Data[i]));
            return max;
        }

        public double MaxAbs => Data.Length == 0 ? 0 : Data.Max(v => Math.Abs((double)v));
    }

    /// <summary>Runs the model on one input, returning the requested tensors (graph outputs or not).</summary>
    public static Values[] Run(ModelProto model, string input, Values x, params string[] outputs)
    {
        var withOutputs = model.Clone();
        foreach (var name in outputs.Where(o => withOutputs.Graph.Output.All(v => v.Name != o)))
            withOutputs.Graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        using var options = new SessionOptions { IntraOpNumThreads = 2, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(withOutputs.ToByteArray(), options);
        using var value = OrtValue.CreateTensorValueFromMemory(x.Data, x.Shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [input], [value], outputs);
        return results.Select(r => new Values(r.GetTensorDataAsSpan<float>().ToArray(), r.GetTensorTypeAndShape().Shape)).ToArray();
    }

    /// <summary>Seeded values: uniform in [low, high), or whole numbers in 0..255 (pixels) when <paramref name="pixels"/>.</summary>
    public static Values Random(long[] shape, int seed, float low = -1f, float high = 1f, bool pixels = false)
    {
        var random = new Random(seed);
        var data = new float[shape.Aggregate(1L, (p, d) => p * d)];
        for (int i = 0; i < data.Length; i++)
            data[i] = pixels ? random.Next(256) : low + (high - low) * (float)random.NextDouble();
        return new Values(data, shape);
    }

    public static TensorProto Floats(string name, long[] shape, int seed) =>
        OnnxGraph.FloatTensor(name, shape, Random(shape, seed).Data);

    /// <summary>A model from nodes and initializers with one float input <c>x</c> and one float output <c>y</c>.</summary>
    public static ModelProto Model(int opset, long[] inputShape, IEnumerable<NodeProto> nodes, IEnumerable<TensorProto>? initializers = null)
    {
        var graph = new GraphProto { Name = "op_test" };
        graph.Input.Add(OnnxGraph.FloatValueInfo("x", "N", inputShape[1..]));
        graph.Node.AddRange(nodes);
        graph.Initializer.AddRange(initializers ?? []);
        graph.Output.Add(new ValueInfoProto
        {
            Name = "y",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
        });
        var model = new ModelProto { IrVersion = opset >= 13 ? 7 : 6, ProducerName = "MlNetTransfer.Tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }
}
