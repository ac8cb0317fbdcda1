namespace MlNetTransfer.Backbones;

/// <summary>
/// A named group of conv layers (Keras' <c>block5</c>, a ResNet stage). <see cref="Output"/> is the tensor where the
/// block ends; the block before the first unfrozen one ends at the freeze boundary.
/// </summary>
/// <param name="Name">Name the user says, e.g. <c>block5</c> or <c>stage4</c>.</param>
/// <param name="Output">ONNX tensor the block's last node writes.</param>
public sealed record NamedBlock(string Name, string Output);
