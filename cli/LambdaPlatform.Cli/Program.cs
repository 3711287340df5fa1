using LambdaPlatform.Cli;

// The `lambda` tool: one command for every part of the platform.
return await LambdaCli.RunAsync(args, Console.Out, Console.Error);
