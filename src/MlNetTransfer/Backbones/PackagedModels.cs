namespace MlNetTransfer.Backbones;

/// <summary>
/// ONNX files that arrive with NuGet packages. Microsoft.ML.DnnImageFeaturizer.ResNet18 copies its models to
/// <c>DnnImageModels/</c> in the output folder of every project that (transitively) references it.
/// </summary>
internal static class PackagedModels
{
    /// <summary>Folder holding <c>ResNet18Onnx/</c> and <c>ResNetPrepOnnx/</c>; <c>MLNETTRANSFER_DNN_MODELS</c> overrides it.</summary>
    public static string DnnImageModelsFolder =>
        Environment.GetEnvironmentVariable("MLNETTRANSFER_DNN_MODELS") is { Length: > 0 } overridden
            ? overridden
            : Path.Combine(AppContext.BaseDirectory, "DnnImageModels");

    public static string ResNet18 => Path.Combine(DnnImageModelsFolder, "ResNet18Onnx", "ResNet18.onnx");

    public static string ResNetPreprocess => Path.Combine(DnnImageModelsFolder, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
}
