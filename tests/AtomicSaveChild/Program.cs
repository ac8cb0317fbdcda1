// AtomicSaveChild <source.zip> <target.zip>: saves the source model to the target again and again, printing "saved N"
// after each save, until killed. The tests kill it at random moments and check the target is always a whole model.
using Microsoft.ML;
using MlNetTransfer.Inference;

var ml = new MLContext(1);
var metadata = ModelArchive.ReadMetadata(args[0]) ?? throw new InvalidOperationException("not a model of this tool");
var model = ModelArchive.Load(ml, args[0], out var schema);
for (int n = 1; ; n++)
{
    ModelArchive.Save(ml, model, schema, metadata with { CreatedUtc = DateTimeOffset.UtcNow }, args[1]);
    Console.WriteLine($"saved {n}");
}
