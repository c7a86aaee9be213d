using ApiServer.Hosting;

return await ServerRunner.RunAsync(args);
