using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>
/// Headless Chromium driven through its DevTools protocol (JSON over a WebSocket), with nothing but the BCL: the
/// browser runs with a throw-away profile and remote debugging on a free loopback port. Disposing kills it (and its
/// helper processes) and deletes the profile.
/// </summary>
public sealed class HeadlessChromium : IDisposable
{
    private readonly Process _process;
    private readonly TestData.TempFolder _profile;
    private readonly StringBuilder _output = new();

    private HeadlessChromium(Process process, TestData.TempFolder profile, int port)
    {
        _process = process;
        _profile = profile;
        DebuggingPort = port;
    }

    public int DebuggingPort { get; }

    /// <summary>Chromium's own log (stderr), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>
    /// The Chromium executable: CHROMIUM_PATH if set (null if that file is missing), else chromium or Chrome on the
    /// PATH or in /usr/bin (Debian's package installs /usr/bin/chromium); null where there is none.
    /// </summary>
    public static string? FindExecutable()
    {
        if (Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } configured)
            return File.Exists(configured) ? configured : null;
        string[] names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(Path.PathSeparator).Append("/usr/bin"))
            foreach (var name in names)
                if (File.Exists(Path.Combine(dir, name)))
                    return Path.Combine(dir, name);
        return null;
    }

    public static HeadlessChromium Start(string executable, TimeSpan timeout)
    {
        var profile = new TestData.TempFolder();
        var port = WebSampleProcess.FreeTcpPort();
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps", "--no-first-run",
                     "--no-default-browser-check", "--mute-audio", "--window-size=1000,800", $"--user-data-dir={profile.Path}",
                     "--remote-debugging-address=127.0.0.1", $"--remote-debugging-port={port}", "about:blank",
                 })
            info.ArgumentList.Add(arg);
        var process = new Process { StartInfo = info };
        var browser = new HeadlessChromium(process, profile, port);
        process.OutputDataReceived += (_, e) => browser.Append(e.Data);
        process.ErrorDataReceived += (_, e) => browser.Append(e.Data);
        try
        {
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return browser;
        }
        catch
        {
            browser.Dispose();
            throw;
        }
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    /// <summary>Waits for the browser's first page target (GET /json) and connects to it.</summary>
    public async Task<DevToolsSession> ConnectToPageAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"Chromium exited with code {_process.ExitCode} before it listened on port {DebuggingPort}:\n{Output}");
            try
            {
                var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{DebuggingPort}/json"))!.AsArray();
                var page = targets.FirstOrDefault(t => (string?)t!["type"] == "page" && t["webSocketDebuggerUrl"] is not null);
                if (page is not null)
                    return await DevToolsSession.ConnectAsync(new Uri((string)page["webSocketDebuggerUrl"]!), timeout);
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            if (watch.Elapsed > timeout)
                throw new TimeoutException($"Chromium's DevTools endpoint on port {DebuggingPort} listed no page within {timeout.TotalSeconds:0} s:\n{Output}");
            await Task.Delay(200);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // never started
        }
        _process.Dispose();
        // The browser's helpers may still be closing files in the profile: try a few times.
        for (int i = 0; i < 10 && Directory.Exists(_profile.Path); i++)
        {
            _profile.Dispose();
            if (Directory.Exists(_profile.Path))
                Thread.Sleep(200);
        }
    }
}

/// <summary>One DevTools protocol connection to a page: commands with ids, answers matched by id, events ignored.</summary>
public sealed class DevToolsSession : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly TimeSpan _timeout;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly SemaphoreSlim _sending = new(1);
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _receiving;
    private int _nextId;

    private DevToolsSession(ClientWebSocket socket, TimeSpan timeout)
    {
        _socket = socket;
        _timeout = timeout;
        _receiving = Task.Run(ReceiveLoopAsync);
    }

    public static async Task<DevToolsSession> ConnectAsync(Uri webSocketUrl, TimeSpan timeout)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await socket.ConnectAsync(webSocketUrl, cts.Token);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new DevToolsSession(socket, timeout);
    }

    /// <summary>Sends one command and returns its result; a protocol error or no answer in time throws.</summary>
    public async Task<JsonElement> SendAsync(string method, object? parameters = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        var answer = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        using var cts = new CancellationTokenSource(_timeout);
        await _sending.WaitAsync(cts.Token);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cts.Token);
        }
        finally
        {
            _sending.Release();
        }
        try
        {
            var message = await answer.Task.WaitAsync(_timeout);
            if (message.TryGetProperty("error", out var error))
                throw new InvalidOperationException($"DevTools {method} failed: {error}");
            return message.GetProperty("result");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"DevTools {method} got no answer within {_timeout.TotalSeconds:0} s");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>Evaluates a JavaScript expression in the page (awaiting a promise) and returns its value.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (result.TryGetProperty("exceptionDetails", out var exception))
            throw new InvalidOperationException($"The page threw evaluating `{expression}`: {exception}");
        return result.GetProperty("result").TryGetProperty("value", out var value) ? value : default;
    }

    /// <summary>Evaluates <paramref name="expression"/> every 100 ms until it is true; throws after the timeout.</summary>
    public async Task WaitForAsync(string expression, string what)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var value = await EvaluateAsync(expression);
            if (value.ValueKind == JsonValueKind.True)
                return;
            if (watch.Elapsed > _timeout)
                throw new TimeoutException($"Timed out after {_timeout.TotalSeconds:0} s waiting for {what} ({expression})");
            await Task.Delay(100);
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                var received = await _socket.ReceiveAsync(buffer, _closing.Token);
                if (received.MessageType == WebSocketMessageType.Close)
                    break;
                message.Write(buffer, 0, received.Count);
                if (!received.EndOfMessage)
                    continue;
                using (var document = JsonDocument.Parse(message.ToArray()))
                {
                    if (document.RootElement.TryGetProperty("id", out var id) && _pending.TryGetValue(id.GetInt32(), out var answer))
                        answer.TrySetResult(document.RootElement.Clone());
                }
                message.SetLength(0);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or JsonException or ObjectDisposedException)
        {
        }
        foreach (var answer in _pending.Values)
            answer.TrySetException(new InvalidOperationException("The DevTools connection closed."));
    }

    public async ValueTask DisposeAsync()
    {
        await _closing.CancelAsync();
        try
        {
            await _receiving.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }
        _socket.Abort();
        _socket.Dispose();
        _closing.Dispose();
        _sending.Dispose();
    }
}
