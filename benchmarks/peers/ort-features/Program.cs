// Usage: OrtFeatures <prep.onnx|-> <base.onnx> <output tensor> <in.f32> <count> <out.f32>
// in.f32: count x [3,224,224] float32 little-endian (planar RGB 0..255 when a prep model is given, else the base's input).
// out.f32: count x the output tensor's floats. Runs one image at a time (the CNTK export's batch is fixed at 1), 2 threads.
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

if (args.Length != 6)
{
    Console.Error.WriteLine("usage: OrtFeatures <prep.onnx|-> <base.onnx> <output tensor> <in.f32> <count> <out.f32>");
    return 2;
}
var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
using var prep = args[0] == "-" ? null : new InferenceSession(args[0], options);
using var main = new InferenceSession(args[1], options);
string outputName = args[2];
int count = int.Parse(args[4]);
var input = File.ReadAllBytes(args[3]);
int per = input.Length / 4 / count;
var floats = new float[input.Length / 4];
Buffer.BlockCopy(input, 0, floats, 0, input.Length);
using var output = File.Create(args[5]);
int[] shape = [1, 3, 224, 224];
for (int i = 0; i < count; i++)
{
    var x = new DenseTensor<float>(floats.AsMemory(i * per, per), shape);
    DenseTensor<float> baseInput = x;
    if (prep is not null)
    {
        using var p = prep.Run([NamedOnnxValue.CreateFromTensor(prep.InputMetadata.Keys.First(), x)]);
        baseInput = (DenseTensor<float>)p.First().AsTensor<float>().ToDenseTensor();
    }
    using var r = main.Run([NamedOnnxValue.CreateFromTensor(main.InputMetadata.Keys.First(), baseInput)], [outputName]);
    var y = r.First().AsTensor<float>().ToArray();
    var bytes = new byte[y.Length * 4];
    Buffer.BlockCopy(y, 0, bytes, 0, bytes.Length);
    output.Write(bytes);
}
return 0;
