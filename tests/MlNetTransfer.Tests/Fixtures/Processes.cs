using System.Diagnostics;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>Runs the built console, the stock-ML.NET consumer and the web sample as separate processes, as users do.</summary>
public static class Processes
{
    /// <summary>Debug or Release, whichever the tests were built as.</summary>
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    public static string CliDll => Built("src/MlNetTransfer.Cli", "mlnet-transfer.dll");

    public static string StockConsumerDll => Built("tests/StockConsumer", "StockConsumer.dll");

    public static string WebClassifierDll => Built("samples/WebClassifier", "WebClassifier.dll");

    public static string AtomicSaveChildDll => Built("tests/AtomicSaveChild", "AtomicSaveChild.dll");

    public static string CoreOnlyTrainerDll => Built("tests/CoreOnlyTrainer", "CoreOnlyTrainer.dll");

    private static string Built(string project, string dll)
    {
        var path = Path.Combine(TestData.RepoRoot, project, "bin", Configuration, "net10.0", dll);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built (dotnet build the solution first)");
    }

    public sealed record Result(int ExitCode, string StdOut, string StdErr);

    public const int SigInt = 2, SigTerm = 15;

    /// <summary>kill(2): sends a POSIX signal to a process (Unix only); 0 on success, else -1 and errno.</summary>
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int SendSignal(int pid, int signal);

    /// <summary>
    /// Points the child's temp folder at <paramref name="folder"/>. For children the tests kill: a killed process cleans
    /// nothing up (ML.NET's unpacked ONNX copy of a loaded zip, ~64 MB; the runtime's diagnostic pipes), and the test's
    /// own temp folder takes that with it when it is deleted.
    /// </summary>
    public static ProcessStartInfo WithTempFolder(this ProcessStartInfo info, string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var name in new[] { "TMPDIR", "TMP", "TEMP" })
            info.Environment[name] = folder;
        return info;
    }

    public static Result Run(string dll, params string[] args) => RunWith(new Dictionary<string, string>(), dll, args);

    /// <summary>As <see cref="Run"/>, with extra environment variables (e.g. MLNETTRANSFER_CACHE).</summary>
    public static Result RunWith(IReadOnlyDictionary<string, string> environment, string dll, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment)
            info.Environment[name] = value;
        info.ArgumentList.Add(dll);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        info.Environment["NO_COLOR"] = "1";
        return Run(info, TimeSpan.FromMinutes(10));
    }

    /// <summary>Starts <paramref name="info"/> (output redirected), collects both streams, and kills the process tree when it outlives <paramref name="timeout"/>.</summary>
    public static Result Run(ProcessStartInfo info, TimeSpan timeout)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{info.FileName} {string.Join(' ', info.ArgumentList)} did not finish in {timeout.TotalMinutes:0} minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
