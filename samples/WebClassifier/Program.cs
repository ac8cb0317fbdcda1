// A web app as a customer writes it: an ASP.NET Core minimal API serving a model zip that MlNetTransfer saved. The zip
// loads with the stock ML.NET packages alone (tests/StockConsumer proves it), but an upload is hostile input: the app
// predicts through MlNetTransfer's ImageClassifierPool, so that each image meets the library's one reader, with the
// same limits as training (the header is checked before any pixel is decoded, truncation is caught, EXIF orientation
// is applied), and only as many images are decoded at once as there are engines. Uploads are read into memory (within
// the size limit) and predicted from there: nothing is written to disk.
//
//   dotnet run --project samples/WebClassifier -- --model model.zip --urls http://127.0.0.1:5080
//
//   POST /api/predict   multipart/form-data field "image" (or the raw image with an image/* content type)
//                       -> { "label", "probability", "scores": [{ "label", "score" }, ...] }, best first
//   GET  /api/info      -> { "model", "classes" }
//   GET  /health        -> ok
//   GET  /              -> a page to try it in a browser
using System.Reflection;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using MlNetTransfer.Inference;
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
builder.Services.Configure<FormOptions>(form =>
{
    form.MultipartBodyLengthLimit = Uploads.MaxRequestBytes;
    // ASP.NET Core buffers a form's files above 64 KB to temp files; here they stay in memory, within the limit above.
    form.MemoryBufferThreshold = (int)Uploads.MaxRequestBytes;
});

ImageClassifierPool pool;
try
{
    // Each engine decodes one image at a time, so this also bounds the decodes at once; more requests wait.
    var engines = builder.Configuration.GetValue<int>("Model:Engines");
    pool = new ImageClassifierPool(modelPath, engines > 0 ? engines : Environment.ProcessorCount);
    // Loads the first engine now: a file that is not a model stops the app here, not at the first request.
    _ = pool.Classes;
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

    // Anything unexpected: a JSON error and a log entry, never a stack trace to the client. A request that Kestrel
    // found bad (a body cut short, too slow, too large) keeps Kestrel's client-error status instead of a 500.
    app.UseExceptionHandler(new ExceptionHandlerOptions
    {
        StatusCodeSelector = e => e is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError,
        ExceptionHandler = context => context.Response.WriteAsJsonAsync(new ErrorBody(
            context.Features.Get<IExceptionHandlerFeature>()?.Error is BadHttpRequestException
                ? Uploads.UnreadableBody
                : "The server failed to handle the request; see its log.")),
    });

    app.MapGet("/", () => Results.Content(Page.Html, "text/html; charset=utf-8"));

    app.MapGet("/health", () => "ok");

    app.MapGet("/api/info", (ImageClassifierPool classifiers) => new ModelInfo(Path.GetFileName(classifiers.ModelPath), classifiers.Classes));

    app.MapPost("/api/predict", async (HttpRequest request, ImageClassifierPool classifiers, ILogger<Program> log, CancellationToken cancellationToken) =>
    {
        try
        {
            var image = await Uploads.ReadImageAsync(request, cancellationToken);
            var prediction = await classifiers.PredictAsync(image, "upload", cancellationToken);
            // Not the library's record as is: its Path is only the name given above.
            return Results.Ok(new PredictionBody(prediction.Label, prediction.Probability, prediction.Scores));
        }
        catch (BadUploadException e)
        {
            log.LogInformation("Rejected an upload ({Status}): {Reason}", e.StatusCode, e.Message);
            return Results.Json(new ErrorBody(e.Message), statusCode: e.StatusCode);
        }
        catch (ImageReadException e)
        {
            // The library's reader refused the image (a limit, corrupt or truncated data): its reason, as one sentence.
            var sentence = $"The image was refused: {e.Reason.TrimEnd('.')}.";
            log.LogInformation("Rejected an upload: {Reason}", sentence);
            return Results.BadRequest(new ErrorBody(sentence));
        }
    });

    app.Logger.LogInformation("Serving {Model} ({Count} classes: {Classes})", modelPath, pool.Classes.Count, string.Join(", ", pool.Classes));
    await app.RunAsync();
    return 0;
}
finally
{
    // After the server has stopped (Ctrl+C, SIGTERM): dispose the engines and their models, so that ML.NET deletes the
    // ONNX files it unpacked to the temp folder.
    pool.Dispose();
}

public sealed record ErrorBody(string Error);

/// <summary>What the API answers: the best label, its probability, and every class's score, best first.</summary>
public sealed record PredictionBody(string Label, float Probability, IReadOnlyList<LabelScore> Scores);

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
