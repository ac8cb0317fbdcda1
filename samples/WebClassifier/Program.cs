// A web app as a customer writes it: ASP.NET Core minimal API + the stock ML.NET packages (Microsoft.ML,
// ImageAnalytics, OnnxTransformer, OnnxRuntime). It serves a model zip that MlNetTransfer saved; nothing here knows
// MlNetTransfer.
//
//   dotnet run --project samples/WebClassifier -- --model model.zip --urls http://127.0.0.1:5080
//
//   POST /api/predict   multipart/form-data field "image" (or the raw image with an image/* content type)
//                       -> { "label", "probability", "scores": [{ "label", "score" }, ...] }, best first
//   GET  /api/info      -> { "model", "classes" }
//   GET  /health        -> ok
//   GET  /              -> a page to try it in a browser
using System.Reflection;
using Microsoft.AspNetCore.Http.Features;
using WebClassifier;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    // appsettings.json is read from beside the app, whatever the working folder.
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Configuration.AddCommandLine(args, new Dictionary<string, string> { ["--model"] = "Model:Path" });

// The model: --model <path>, else Model:Path (appsettings.json, or env Model__Path), else env MODEL_PATH.
var modelPath = builder.Configuration["Model:Path"] is { Length: > 0 } configured ? configured : Environment.GetEnvironmentVariable("MODEL_PATH");
if (string.IsNullOrWhiteSpace(modelPath))
{
    Console.Error.WriteLine("error: no model: pass --model <model.zip>, or set Model:Path in appsettings.json, or the environment variable MODEL_PATH.");
    return 2;
}
modelPath = Path.GetFullPath(modelPath);
if (!File.Exists(modelPath))
{
    Console.Error.WriteLine($"error: the model file '{modelPath}' does not exist.");
    return 2;
}

// Only this machine, unless told otherwise (--urls, ASPNETCORE_URLS).
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = Uploads.MaxRequestBytes);
builder.Services.Configure<FormOptions>(form => form.MultipartBodyLengthLimit = Uploads.MaxRequestBytes);

EnginePool pool;
try
{
    var engines = builder.Configuration.GetValue<int>("Model:Engines");
    pool = new EnginePool(modelPath, engines > 0 ? engines : Environment.ProcessorCount);
}
catch (Exception e)
{
    Console.Error.WriteLine($"error: cannot load the model '{modelPath}': {e.Message}");
    return 1;
}

try
{
    builder.Services.AddSingleton(pool);
    var app = builder.Build();

    // Anything unexpected: a JSON error and a log entry, never a stack trace to the client.
    app.UseExceptionHandler(handler => handler.Run(context =>
        context.Response.WriteAsJsonAsync(new ErrorBody("The server failed to handle the request; see its log."))));

    app.MapGet("/", () => Results.Content(Page.Html, "text/html; charset=utf-8"));

    app.MapGet("/health", () => "ok");

    app.MapGet("/api/info", (EnginePool engines) => new ModelInfo(Path.GetFileName(engines.ModelPath), engines.Classes));

    app.MapPost("/api/predict", async (HttpRequest request, EnginePool engines, ILogger<Program> log, CancellationToken cancellationToken) =>
    {
        string? image = null;
        try
        {
            image = await Uploads.SaveToTempFileAsync(request, cancellationToken);
            Upright.Apply(image);
            return Results.Ok(await engines.PredictAsync(image, cancellationToken));
        }
        catch (BadUploadException e)
        {
            log.LogInformation("Rejected an upload: {Reason}", e.Message);
            return Results.BadRequest(new ErrorBody(e.Message));
        }
        finally
        {
            if (image is not null)
                Uploads.TryDelete(image);
        }
    });

    app.Logger.LogInformation("Serving {Model} ({Count} classes: {Classes})", modelPath, pool.Classes.Count, string.Join(", ", pool.Classes));
    await app.RunAsync();
    return 0;
}
finally
{
    // After the server has stopped (Ctrl+C, SIGTERM): dispose the engines and the model, so that ML.NET deletes the
    // ONNX file it unpacked to the temp folder.
    pool.Dispose();
}

public sealed record ErrorBody(string Error);

public sealed record ModelInfo(string Model, IReadOnlyList<string> Classes);

/// <summary>The test page, embedded in the assembly (index.html).</summary>
internal static class Page
{
    public static string Html { get; } = Load();

    private static string Load()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("index.html")
            ?? throw new InvalidOperationException("index.html is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
