using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary><c>--device cuda</c> where there is no CUDA build or no GPU: the same features on the CPU, and a reason.</summary>
public class ExecutionDeviceTests
{
    [SkippableFact]
    public void CudaWithoutAGpuBuildOrGpuFallsBackToTheCpuAndSaysWhy()
    {
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var opened = OrtSessions.Open(graph.Path, 1, ExecutionDevice.Cuda);
        using var session = opened.Session;
        Skip.If(opened.Device == ExecutionDevice.Cuda, "this machine has ONNX Runtime's CUDA build and a GPU: nothing falls back");
        Assert.Equal(ExecutionDevice.Cpu, opened.Device);
        Assert.NotNull(opened.Note);
        Assert.StartsWith("Featurizer.Device = Cuda is not available here, running on the CPU instead:", opened.Note);

        var images = ImageDatasetLoader.Load(TestData.FashionSample).Test.Take(3).ToList();
        var cpu = ActivationStoreTests.Featurize(graph, images, cacheRoot: null);
        var cuda = ActivationStoreTests.Featurize(graph, images, cacheRoot: null, device: ExecutionDevice.Cuda);
        for (int i = 0; i < images.Count; i++)
            Assert.Equal(cpu.Images[i].Plain, cuda.Images[i].Plain);
    }

    [SkippableFact]
    public void CudaReachesTheFineTuningPrefixToo()
    {
        // The frozen part of a fine-tuning run runs in the same pipeline as feature extraction, on the device asked for.
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var notes = new List<string>();
        using var trained = new MlNetTransfer.Training.ImageClassifierTrainer(new MlNetTransfer.Training.ImageClassifierTrainerOptions
        {
            ConvBase = preset, Mode = MlNetTransfer.Training.TrainingMode.FineTuning, Threads = 2,
            FineTuning = FineTuneTests.Quick with { Unfreeze = "block5" },
            Featurizer = new FeaturizerOptions { Device = ExecutionDevice.Cuda, UseCache = false },
        }).Train(TestData.FashionSubset(3, 6, 3), new ActivationStoreTests.Notes(notes));
        if (!notes.Any(n => n.StartsWith("Featurizer.Device = Cuda is not available here", StringComparison.Ordinal)))
            Skip.If(true, "ONNX Runtime ran on CUDA here: nothing to fall back from");
        Assert.Equal(["block5"], trained.Metadata.FineTune!.UnfrozenBlocks);
    }

    [SkippableFact]
    public void TrainWithDeviceCudaWarnsAndCompletesOnTheCpu()
    {
        using var temp = new TestData.TempFolder();
        var result = Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = temp.File("cache") }, Processes.CliDll,
            "featurize", TestData.FashionSample, "--shard", "1/20", "--device", "cuda", "--out", temp.File("s.shard"));
        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        if (!result.StdOut.Contains("--device cuda is not available here"))
            Skip.If(true, "ONNX Runtime ran on CUDA here: nothing to fall back from");
        Assert.Contains("running on the CPU instead", result.StdOut);
        Assert.Contains("shard 1/20, 20 images", result.StdOut);
    }
}
