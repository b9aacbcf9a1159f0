//! Compile a build file and print the plan as JSON: `cargo run --example compile -- FILE [ARCH]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(file) = args.get(1) else {
        eprintln!("usage: compile FILE [ARCH]");
        std::process::exit(2);
    };
    let arch = args.get(2).map(String::as_str).unwrap_or("x86_64");
    let res = melange2_config::Arch::parse(arch).and_then(|arch| {
        melange2_config::compile_file(&melange2_config::CompileRequest {
            file: file.into(),
            arch,
            pipeline_dirs: Vec::new(),
            build_options: Vec::new(),
            vars_file: None,
            env_files: Vec::new(),
        })
    });
    match res {
        Ok(p) => println!("{}", p.to_json()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
