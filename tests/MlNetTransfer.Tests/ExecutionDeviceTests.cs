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
        Assert.StartsWith("--device cuda is not available here, running on the CPU instead:", opened.Note);

        var images = ImageDatasetLoader.Load(TestData.FashionSample).Test.Take(3).ToList();
        FeaturizationResult Run(ExecutionDevice device)
        {
            using var featurizer = new ImageFeaturizer(new MLContext(1), graph, new FeaturizerOptions { Device = device, UseFeatureCache = false });
            Assert.Equal(device == ExecutionDevice.Cuda, featurizer.DeviceNote is not null);
            return featurizer.Featurize(images);
        }
        var cpu = Run(ExecutionDevice.Cpu);
        var cuda = Run(ExecutionDevice.Cuda);
        for (int i = 0; i < images.Count; i++)
            Assert.Equal(cpu.Images[i].Features, cuda.Images[i].Features);
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
        Assert.Contains("shard 1/20, 20 of 400 images", result.StdOut);
    }
}
