using MlNetTransfer.Benchmarks;

// dotnet run --project benchmarks/MlNetTransfer.Benchmarks -c Release -- finetune-epoch [data] [--images N] [--repeats R] [--threads T]
if (args.Length == 0 || args[0] != "finetune-epoch")
{
    Console.Error.WriteLine("usage: finetune-epoch [data folder] [--images N] [--repeats R] [--threads T]");
    return 2;
}
string data = args.Length > 1 && !args[1].StartsWith("--") ? args[1] : Path.Combine("..", "shared", "data", "hymenoptera_data");
int Option(string name, int fallback) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
return FineTuneEpochBenchmark.Run(data, Option("--images", 128), Option("--repeats", 3), Option("--threads", Environment.ProcessorCount));
