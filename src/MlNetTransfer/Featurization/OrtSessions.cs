using Microsoft.ML.OnnxRuntime;

namespace MlNetTransfer.Featurization;

/// <summary>A session and, when the requested device could not be used, why (the session then runs on the CPU).</summary>
internal sealed record OpenedSession(InferenceSession Session, ExecutionDevice Device, string? Note);

/// <summary>ONNX Runtime sessions set up the way that was measured fastest on CPU.</summary>
internal static class OrtSessions
{
    /// <summary>Threads for a session: the given count, else every core the process may use.</summary>
    public static int Threads(int? requested) => Math.Max(1, requested ?? Environment.ProcessorCount);

    public static InferenceSession Create(string onnxPath, int? intraOpThreads) => Open(onnxPath, intraOpThreads, ExecutionDevice.Cpu).Session;

    public static InferenceSession Create(byte[] onnxModel, int? intraOpThreads) => Open(o => new InferenceSession(onnxModel, o), intraOpThreads, ExecutionDevice.Cpu).Session;

    /// <summary>A session on the requested device; CUDA falls back to the CPU with a note saying why.</summary>
    public static OpenedSession Open(string onnxPath, int? intraOpThreads, ExecutionDevice device) =>
        Open(o => new InferenceSession(onnxPath, o), intraOpThreads, device);

    /// <summary>As above, for a model in memory (a graph cut at a tensor).</summary>
    public static OpenedSession Open(byte[] onnxModel, int? intraOpThreads, ExecutionDevice device) =>
        Open(o => new InferenceSession(onnxModel, o), intraOpThreads, device);

    private static OpenedSession Open(Func<SessionOptions, InferenceSession> open, int? intraOpThreads, ExecutionDevice device)
    {
        string? note = null;
        if (device == ExecutionDevice.Cuda)
        {
            using var options = Options(intraOpThreads);
            try
            {
                options.AppendExecutionProvider_CUDA(0);
                return new OpenedSession(open(options), ExecutionDevice.Cuda, null);
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                // The CPU build of ONNX Runtime says "CUDA execution provider is not enabled in this build"; a GPU build
                // without a usable GPU or CUDA libraries fails to create the provider.
                note = $"Featurizer.Device = Cuda is not available here, running on the CPU instead: {FirstLine(e.Message)}";
            }
        }
        using (var options = Options(intraOpThreads))
            return new OpenedSession(open(options), ExecutionDevice.Cpu, note);
    }

    private static SessionOptions Options(int? intraOpThreads)
    {
        var options = new SessionOptions
        {
            // ORT's default thread setting ran like 1 thread here: always say how many.
            IntraOpNumThreads = Threads(intraOpThreads),
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        // Spinning worker threads steal the cores that decode the next batch between runs.
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return options;
    }

    private static string FirstLine(string message) => string.Join(' ', message.Split((char[])['\n', '\r'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
