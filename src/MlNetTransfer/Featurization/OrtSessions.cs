using Microsoft.ML.OnnxRuntime;

namespace MlNetTransfer.Featurization;

/// <summary>ONNX Runtime sessions set up the way that was measured fastest on CPU.</summary>
public static class OrtSessions
{
    /// <summary>Threads for a session: the given count, else every core the process may use.</summary>
    public static int Threads(int? requested) => Math.Max(1, requested ?? Environment.ProcessorCount);

    public static InferenceSession Create(string onnxPath, int? intraOpThreads) => Create(o => new InferenceSession(onnxPath, o), intraOpThreads);

    public static InferenceSession Create(byte[] onnxModel, int? intraOpThreads) => Create(o => new InferenceSession(onnxModel, o), intraOpThreads);

    private static InferenceSession Create(Func<SessionOptions, InferenceSession> open, int? intraOpThreads)
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
        try
        {
            return open(options);
        }
        finally
        {
            options.Dispose();
        }
    }
}
