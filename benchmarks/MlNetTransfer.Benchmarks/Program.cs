using MlNetTransfer.Benchmarks;

// dotnet benchmarks/MlNetTransfer.Benchmarks/bin/Release/net10.0/MlNetTransfer.Benchmarks.dll <benchmark> [data] [options]
//   finetune-epoch [data] [--images N] [--repeats R] [--threads T] [--base resnet18|vgg16-keras|vgg16-torchvision] [--base-model file.onnx]
//   pipeline-views [data] [--repeats R] [--threads T] [--unfreeze stage4]
//   stock-baseline [data]
//   int8-profile [data] [--threads T]
//   featurize-tune [data] [--repeats R] [--threads T]
//   decode-modes [data] [--repeats R] [--threads T] [--caltech <folder>] [--accuracy]
//   featurize [data] [--repeats R] [--threads T] [--no-int8] [--caltech <folder>]
//   synthetic-set <data> <out folder> --images N [--seed S]
// As the console does (every way measured in this process runs under it).
MlNetTransfer.IO.NativeMemoryTuning.ReturnLargeBuffersToTheOs();
string data = args.Length > 1 && !args[1].StartsWith("--") ? args[1] : Path.Combine("..", "shared", "data", "hymenoptera_data");
int Option(string name, int fallback) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
string? Text(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
int threads = Option("--threads", Environment.ProcessorCount);
switch (args.FirstOrDefault())
{
    case "finetune-epoch":
        return FineTuneEpochBenchmark.Run(data, Option("--images", 128), Option("--repeats", 3), threads,
            Text("--base") ?? MlNetTransfer.Backbones.ConvBaseRegistry.DefaultName, Text("--base-model"));
    case "stock-baseline":
        return StockBaselineBenchmark.Run(data);
    case "pipeline-views":
        return PipelineViewsBenchmark.Run(data, Option("--repeats", 3), threads, Text("--unfreeze") ?? "stage4");
    case "featurize":
        return FeaturizeBenchmark.Run(data, Option("--repeats", 3), threads, !args.Contains("--no-int8"),
            Text("--caltech") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(data))!, "caltech101_6"));
    case "int8-profile":
        return Int8ProfileBenchmark.Run(data, threads);
    case "featurize-tune":
        return FeaturizeBenchmark.Tune(data, Option("--repeats", 3), threads);
    case "synthetic-set":
        return SyntheticSet.Run(args[1], args[2], Option("--images", 1000), Option("--seed", 1));
    case "decode-modes":
        return DecodeModesBenchmark.Run(data, Option("--repeats", 3), threads,
            Text("--caltech") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(data))!, "caltech101_6"), args.Contains("--accuracy"));
    case "featurize-rss":
        return FeaturizeBenchmark.PeakRssChild(args[1], int.Parse(args[2]), threads);
    default:
        Console.Error.WriteLine("usage: finetune-epoch [data] [--images N] [--repeats R] [--threads T] [--base name] [--base-model file.onnx]");
        Console.Error.WriteLine("       pipeline-views [data] [--repeats R] [--threads T] [--unfreeze stage4]");
        Console.Error.WriteLine("       stock-baseline [data]");
        Console.Error.WriteLine("       int8-profile [data] [--threads T]");
        Console.Error.WriteLine("       decode-modes [data] [--repeats R] [--threads T] [--caltech folder] [--accuracy]");
        Console.Error.WriteLine("       featurize [data] [--repeats R] [--threads T] [--no-int8] [--caltech folder]");
        Console.Error.WriteLine("       synthetic-set <data> <out folder> --images N [--seed S]");
        return 2;
}
