using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>
/// The web sample (samples/WebClassifier) running as its own process on a free loopback port, as a user starts it:
/// <c>dotnet WebClassifier.dll --model model.zip --urls http://127.0.0.1:PORT</c>. Its temp folder (TMPDIR) is a
/// folder of its own, so a test can see what it leaves there. Disposing stops it (SIGTERM, then kill) and deletes
/// that folder.
/// </summary>
public sealed class WebSampleProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private WebSampleProcess(Process process, Uri baseAddress, TestData.TempFolder tempFolder)
    {
        _process = process;
        BaseAddress = baseAddress;
        TempFolder = tempFolder;
    }

    public Uri BaseAddress { get; }

    /// <summary>The server's TMPDIR: where ML.NET unpacks the model's ONNX file and where uploads are saved.</summary>
    public TestData.TempFolder TempFolder { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>The server's resident memory now (working set), in bytes.</summary>
    public long ResidentBytes
    {
        get
        {
            _process.Refresh();
            return _process.WorkingSet64;
        }
    }

    /// <summary>What the server has written to stdout and stderr so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>
    /// Starts the sample and waits until /health answers. <paramref name="modelPath"/> goes on the command line
    /// (<c>--model</c>), or, when <paramref name="modelInEnvironment"/>, in the environment variable MODEL_PATH.
    /// </summary>
    public static WebSampleProcess Start(string modelPath, bool modelInEnvironment = false, TimeSpan? timeout = null, params string[] arguments)
    {
        // A free port can be taken by someone else before the server binds it: then try another.
        for (int attempt = 1; ; attempt++)
        {
            var server = Launch(modelPath, modelInEnvironment, arguments);
            try
            {
                server.WaitUntilHealthy(timeout ?? TimeSpan.FromSeconds(90));
                return server;
            }
            catch (Exception) when (attempt < 3 && server.HasExited && server.Output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                server.Dispose();
            }
            catch
            {
                server.Dispose();
                throw;
            }
        }
    }

    private static WebSampleProcess Launch(string modelPath, bool modelInEnvironment, string[] arguments)
    {
        var baseAddress = new Uri($"http://127.0.0.1:{FreeTcpPort()}/");
        var temp = new TestData.TempFolder();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = temp.Path,
        };
        info.ArgumentList.Add(Processes.WebClassifierDll);
        if (!modelInEnvironment)
        {
            info.ArgumentList.Add("--model");
            info.ArgumentList.Add(modelPath);
        }
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add(baseAddress.GetLeftPart(UriPartial.Authority));
        foreach (var argument in arguments)
            info.ArgumentList.Add(argument);
        info.Environment.Remove("MODEL_PATH");
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("ImageClassifier__", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(key);
        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("DOTNET_URLS");
        if (modelInEnvironment)
            info.Environment["MODEL_PATH"] = modelPath;
        info.WithTempFolder(temp.Path);
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment["NO_COLOR"] = "1";

        var process = new Process { StartInfo = info };
        var server = new WebSampleProcess(process, baseAddress, temp);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        try
        {
            process.Start();
        }
        catch
        {
            process.Dispose();
            temp.Dispose();
            throw;
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    private void WaitUntilHealthy(TimeSpan timeout)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"The web sample exited with code {_process.ExitCode} before answering /health:\n{Output}");
            try
            {
                using var response = http.GetAsync("health").GetAwaiter().GetResult();
                if (response.IsSuccessStatusCode && response.Content.ReadAsStringAsync().GetAwaiter().GetResult() == "Healthy")
                    return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            Thread.Sleep(200);
        }
        throw new TimeoutException($"The web sample did not answer /health within {timeout.TotalSeconds:0} s:\n{Output}");
    }

    /// <summary>Asks the server to stop as Ctrl+C or a service manager does (SIGTERM); returns its exit code.</summary>
    public int Stop(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            if (OperatingSystem.IsWindows() || Processes.SendSignal(_process.Id, Processes.SigTerm) != 0)
                _process.Kill(entireProcessTree: true);
            if (!_process.WaitForExit(timeout))
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(10));
                throw new TimeoutException($"The web sample did not stop within {timeout.TotalSeconds:0} s of SIGTERM:\n{Output}");
            }
        }
        _process.WaitForExit(); // the redirected output is complete only then
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
                Stop(TimeSpan.FromSeconds(15));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
        }
        finally
        {
            try
            {
                if (!_process.HasExited)
                    _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            _process.Dispose();
            TempFolder.Dispose();
        }
    }

    public static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
