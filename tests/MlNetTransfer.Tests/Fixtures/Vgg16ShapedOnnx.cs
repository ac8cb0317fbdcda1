using MlNetTransfer.Onnx;
using Onnx;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>
/// VGG16-shaped ONNX graphs for tests (no VGG16 weights can be had here): 13 3x3 convs with ReLU in five blocks
/// (2, 2, 3, 3, 3), each block ending in a 2x2 MaxPool, with seeded He-initialized weights. Narrow channels and a
/// small input keep CI fast; the structure and tensor names follow the real exports.
/// </summary>
public static class Vgg16ShapedOnnx
{
    private static readonly int[] ConvsPerBlock = [2, 2, 3, 3, 3];

    /// <summary>Keras-like: NHWC input <c>input_1</c> [N,H,W,3], Transpose to NCHW (as tf2onnx does), NHWC output <c>block5_pool</c>.</summary>
    public static string WriteKerasLike(string path, int size = 64, int[]? channels = null, int seed = 7) =>
        Write(path, size, channels ?? [8, 16, 32, 32, 32], seed, nhwc: true, inputName: "input_1", outputName: "block5_pool");

    /// <summary>torchvision-like: NCHW input <c>input</c> [N,3,H,W], output <c>features</c> [N,C,H/32,W/32].</summary>
    public static string WriteTorchvisionLike(string path, int size = 64, int[]? channels = null, int seed = 7) =>
        Write(path, size, channels ?? [8, 16, 32, 32, 32], seed, nhwc: false, inputName: "input", outputName: "features");

    private static string Write(string path, int size, int[] channels, int seed, bool nhwc, string inputName, string outputName)
    {
        var random = new Random(seed);
        var graph = new GraphProto { Name = "vgg16_shaped" };
        graph.Input.Add(nhwc ? ValueInfo(inputName, "N", size, size, 3) : ValueInfo(inputName, "N", 3, size, size));
        string x = inputName;
        if (nhwc)
        {
            graph.Node.Add(OnnxGraph.Node("Transpose", "to_nchw", [x], ["to_nchw"], OnnxGraph.Ints("perm", 0, 3, 1, 2)));
            x = "to_nchw";
        }
        int inChannels = 3;
        for (int b = 0; b < ConvsPerBlock.Length; b++)
        {
            string block = $"block{b + 1}";
            for (int c = 0; c < ConvsPerBlock[b]; c++)
            {
                string conv = $"{block}_conv{c + 1}";
                int outChannels = channels[b];
                var weights = new float[outChannels * inChannels * 9];
                double std = Math.Sqrt(2.0 / (inChannels * 9));
                for (int i = 0; i < weights.Length; i++)
                    weights[i] = (float)(std * Gaussian(random));
                var bias = Enumerable.Range(0, outChannels).Select(_ => (float)(0.01 * Gaussian(random))).ToArray();
                graph.Initializer.Add(OnnxGraph.FloatTensor($"{conv}/kernel", [outChannels, inChannels, 3, 3], weights));
                graph.Initializer.Add(OnnxGraph.FloatTensor($"{conv}/bias", [outChannels], bias));
                graph.Node.Add(OnnxGraph.Node("Conv", conv, [x, $"{conv}/kernel", $"{conv}/bias"], [$"{conv}/conv"],
                    OnnxGraph.Ints("kernel_shape", 3, 3), OnnxGraph.Ints("pads", 1, 1, 1, 1), OnnxGraph.Ints("strides", 1, 1)));
                graph.Node.Add(OnnxGraph.Node("Relu", conv + "_relu", [$"{conv}/conv"], [conv]));
                x = conv;
                inChannels = outChannels;
            }
            string pool = b == ConvsPerBlock.Length - 1 && !nhwc ? outputName : $"{block}_pool";
            graph.Node.Add(OnnxGraph.Node("MaxPool", $"{block}_pool", [x], [pool], OnnxGraph.Ints("kernel_shape", 2, 2), OnnxGraph.Ints("strides", 2, 2)));
            x = pool;
        }
        int outSize = size / 32;
        if (nhwc)
        {
            graph.Node.Add(OnnxGraph.Node("Transpose", "to_nhwc", [x], [outputName], OnnxGraph.Ints("perm", 0, 2, 3, 1)));
            // tf2onnx names the graph output after the Keras layer; the inner MaxPool output is renamed to keep names unique.
            graph.Node.First(n => n.Name == "block5_pool").Output[0] = "block5_pool_nchw";
            graph.Node.Last().Input[0] = "block5_pool_nchw";
            graph.Output.Add(ValueInfo(outputName, "N", outSize, outSize, inChannels));
        }
        else
        {
            graph.Output.Add(ValueInfo(outputName, "N", inChannels, outSize, outSize));
        }
        var model = new ModelProto { IrVersion = 7, ProducerName = "MlNetTransfer.Tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        OnnxGraph.Save(model, path);
        return path;
    }

    private static ValueInfoProto ValueInfo(string name, string batch, params long[] dims) => OnnxGraph.FloatValueInfo(name, batch, dims);

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2.0 * Math.Log(1.0 - random.NextDouble())) * Math.Cos(2.0 * Math.PI * random.NextDouble());
}
