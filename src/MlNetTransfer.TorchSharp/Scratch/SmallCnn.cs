using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.Scratch;

/// <summary>
/// The no-transfer baseline of the learning curve: four 3x3 conv + BatchNorm + ReLU blocks (32, 64, 128, 256 channels;
/// max-pooling after the first three), global average pooling, dropout 0.3 and a linear layer, randomly initialized.
/// Small enough to train in seconds on a few hundred 64x64 images on a CPU.
/// </summary>
internal sealed class SmallCnn : nn.Module<Tensor, Tensor>
{
    private readonly Sequential _features;
    private readonly Dropout _dropout;
    private readonly Linear _output;

    public SmallCnn(int classes) : base("small_cnn")
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        int input = 3, k = 0;
        foreach (var channels in new[] { 32, 64, 128, 256 })
        {
            layers.Add(($"conv{k}", nn.Conv2d(input, channels, 3, padding: 1, bias: false)));
            layers.Add(($"bn{k}", nn.BatchNorm2d(channels)));
            layers.Add(($"relu{k}", nn.ReLU()));
            if (k < 3)
                layers.Add(($"pool{k}", nn.MaxPool2d(2)));
            input = channels;
            k++;
        }
        _features = nn.Sequential(layers);
        _dropout = nn.Dropout(0.3);
        _output = nn.Linear(256, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pixels)
    {
        using var f = _features.forward(pixels);
        using var pooled = f.mean([2, 3]);
        using var dropped = _dropout.forward(pooled);
        return _output.forward(dropped);
    }
}
